#!/usr/bin/env bash
# Build (or reuse) the Pulumi toolchain from Go modules. Pins live in toolchain/*/go.mod and
# requirements.txt; every build lands in .cache/<tool>-<versions>/ and is reused while pinned.
#   pulumi                          CLI            toolchain/pulumi/go.mod
#   pulumi-language-python          language host  toolchain/pulumi-language-python/go.mod, built beside
#                                                  the CLI (the engine's bundled host, so no PATH warning)
#   pulumi-language-python-exec     its program shim and the dynamic-provider launcher, copied beside it
#   pulumi-resource-pulumi-python   from the sdk/v3 module zip at the Python SDK's version
#   pulumi-resource-kubernetes      provider       toolchain/pulumi-resource-kubernetes/go.mod, at the
#                                                  commit of the pulumi-kubernetes pin in requirements.txt
#   actionlint                      linter         toolchain/actionlint/go.mod
#   dapr-state-harness              our harness over Dapr's state.postgresql v2 store
#                                                  toolchain/dapr-state-harness/ (go.mod, main.go)
# A `pulumi` on PATH at the pinned version or newer, with its language host beside it, is used as
# it is (a user's install). Prints, as shell assignments:
#   PULUMI_BIN            directory to put first on PATH (pulumi, actionlint, dapr-state-harness)
#   KUBERNETES_PLUGIN     the provider binary, for `pulumi plugin install resource kubernetes <version> --file`
#   KUBERNETES_VERSION    the plugin version the Python SDK asks for
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="$root/.cache"
bin="$cache/bin"
release_flags=(-trimpath -tags osusergo,grpcnotrace)
export CGO_ENABLED=0 GOFLAGS=-mod=readonly GOTOOLCHAIN=local

log() { echo "pulumi-toolchain: $*" >&2; }

# The version a wrapper module pins for a module path.
pinned() { (cd "$root/toolchain/$1" && go list -m -f '{{.Version}}' "$2"); }

# The Python SDK's version in requirements.txt (PEP 440), e.g. pulumi==3.272.0 -> 3.272.0.
python_pin() {
  sed -n "s/^$1==\([^ ;]*\).*/\1/p" "$root/requirements.txt"
}

# PEP 440 pre-release (4.25.0a1768448096) -> the plugin version the SDK asks for (4.25.0-alpha.1768448096).
plugin_version() { sed -E 's/^([0-9]+\.[0-9]+\.[0-9]+)a([0-9]+)$/\1-alpha.\2/' <<<"$1"; }

# build <name> <version> <binaries> <command...>: run the command with the output directory
# .cache/<name>-<version>.partial as its last argument, then move it into place (an interrupted
# build is never mistaken for a finished one), and link the listed binaries into .cache/bin.
build() {
  local name=$1 version=$2 binaries=$3 dir="$cache/$1-$2"
  shift 3
  if [ -d "$dir" ]; then
    log "$name $version: cached"
  else
    log "$name $version: building"
    local started=$SECONDS
    rm -rf "$dir.partial" && mkdir -p "$dir.partial"
    "$@" "$dir.partial"
    mv "$dir.partial" "$dir"
    log "$name $version: built in $((SECONDS - started)) s"
  fi
  for binary in $binaries; do ln -sfn "$dir/$binary" "$bin/$binary"; done
  built="$dir"
}

module_dir() {  # module_dir <wrapper> <module[@version]>: where the Go module cache holds its files
  (cd "$root/toolchain/$1" && go mod download -json "$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
}

go_tool() {  # go_tool <wrapper> <package> <ldflags> <out>: build a wrapper module's tool (or its own main)
  (cd "$root/toolchain/$1" && go build "${release_flags[@]}" -ldflags "$3" -o "$4/$1" "$2")
}

cli_and_python_host() {  # <cli version> <host version> <sdk version> <out>
  local sdk
  go_tool pulumi github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
    "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$1" "$4"
  shift
  go_tool pulumi-language-python github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python \
    "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$1" "$3"
  sdk="$(module_dir pulumi "github.com/pulumi/pulumi/sdk/v3@v$2")"
  install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$sdk/python/dist/pulumi-resource-pulumi-python" "$3"
}

kubernetes_provider() {  # kubernetes_provider <plugin version> <out>: cmd folder + our go.mod, generate, build
  local module=github.com/pulumi/pulumi-kubernetes/provider/v4 work="$2/work"
  mkdir "$work"
  cp "$(module_dir pulumi-resource-kubernetes "$module")"/cmd/pulumi-resource-kubernetes/* "$work"
  cp "$root"/toolchain/pulumi-resource-kubernetes/go.{mod,sum} "$work"
  chmod -R u+w "$work"
  (cd "$work" && VERSION="$1" go run generate.go &&
    go build "${release_flags[@]}" -ldflags "-X $module/pkg/version.Version=$1" -o "$2/pulumi-resource-kubernetes" .)
  rm -rf "$work"
}

# The provider's pseudo-version must be the commit the Python SDK was built from: the SDK's
# pre-release number is that commit's time (4.25.0a1768448096 <-> v4.0.0-20260115033456-<commit>).
same_commit() {
  local alpha=${2##*.} stamp
  stamp="$(cut -d- -f2 <<<"$1")"
  if [ "$(date -u -d "@$alpha" +%Y%m%d%H%M%S)" != "$stamp" ]; then
    echo "pulumi-toolchain: toolchain/pulumi-resource-kubernetes/go.mod pins $1, which is not the commit of" \
      "pulumi-kubernetes $2 in requirements.txt: pin both to one commit" >&2
    exit 1
  fi
}

main() {
  rm -rf "$bin" && mkdir -p "$bin"
  local cli py_host py_sdk k8s k8s_plugin ambient
  cli="$(pinned pulumi github.com/pulumi/pulumi/pkg/v3)"
  py_host="$(pinned pulumi-language-python github.com/pulumi/pulumi/sdk/v3)"
  py_sdk="$(python_pin pulumi)"
  k8s="$(pinned pulumi-resource-kubernetes github.com/pulumi/pulumi-kubernetes/provider/v4)"
  k8s_plugin="$(plugin_version "$(python_pin pulumi-kubernetes)")"
  same_commit "$k8s" "$k8s_plugin"

  ambient="$(PATH="${PATH//$bin:/}" command -v pulumi || true)"
  if [ -n "$ambient" ] && [ -x "$(dirname "$ambient")/pulumi-language-python" ] &&
    [ "$(printf '%s\n' "$cli" "v$("$ambient" version | sed 's/^v//')" | sort -V | head -1)" = "$cli" ]; then
    log "using $ambient ($("$ambient" version)) and the language host beside it"
    ln -sfn "$ambient" "$bin/pulumi"
  else
    build pulumi "$cli-python-$py_host-sdk-v$py_sdk" pulumi cli_and_python_host "$cli" "$py_host" "$py_sdk"
  fi
  build pulumi-resource-kubernetes "v$k8s_plugin" "" kubernetes_provider "$k8s_plugin"
  local kubernetes_plugin="$built/pulumi-resource-kubernetes"
  build actionlint "$(pinned actionlint github.com/rhysd/actionlint)" actionlint go_tool actionlint \
    github.com/rhysd/actionlint/cmd/actionlint ""
  # Our own code: keyed by the contrib release and a digest of the harness's files.
  local harness_key
  harness_key="$(pinned dapr-state-harness github.com/dapr/components-contrib)-$(cat "$root"/toolchain/dapr-state-harness/* |
    sha256sum | cut -c1-12)"
  build dapr-state-harness "$harness_key" dapr-state-harness go_tool dapr-state-harness . ""
  printf 'PULUMI_BIN=%s\nKUBERNETES_PLUGIN=%s\nKUBERNETES_VERSION=%s\n' "$bin" "$kubernetes_plugin" "$k8s_plugin"
}
main "$@"
