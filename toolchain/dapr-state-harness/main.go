// Command dapr-state-harness runs Dapr's own PostgreSQL state store, the code daprd loads for
// `type: state.postgresql, version: v2` (components-contrib state/postgresql/v2), with the
// Component and Secret manifests neon-stack renders, and prints one JSON line per step.
//
//	dapr-state-harness -component FILE -secret FILE [-replicas N] [-set key=value]... SCENARIO
//
// Scenarios:
//
//	steps        Init (Dapr's migrations), Set/Get/Delete, ETag match and mismatch, first-write
//	             concurrency, TTL expiry and the store's cleanup, Multi, BulkGet
//	sidecars     two stores interleaving optimistic read-modify-writes on the same keys
//	first-start  N stores calling Init at the same instant
//
// -set overrides one Component metadata item (to show what another value would do); without it
// the Component's metadata reaches Init unchanged. Secret references are resolved the way Dapr's
// built-in kubernetes secret store does: the Secret of that name in the Component's namespace,
// its data[key] base64-decoded, key defaulting to the reference's name. Anything that cannot be
// resolved is refused before the store is touched. Exit status 1 when a step fails, 2 on bad input.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dapr/components-contrib/metadata"
	"github.com/dapr/components-contrib/state"
	pgstate "github.com/dapr/components-contrib/state/postgresql/v2"
	"github.com/dapr/kit/logger"
	"gopkg.in/yaml.v3"
)

type objectMeta struct {
	Name      string `yaml:"name"`
	Namespace string `yaml:"namespace"`
}

type metadataItem struct {
	Name         string `yaml:"name"`
	Value        any    `yaml:"value"`
	SecretKeyRef *struct {
		Name string `yaml:"name"`
		Key  string `yaml:"key"`
	} `yaml:"secretKeyRef"`
	EnvRef string `yaml:"envRef"`
}

type component struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       struct {
		Type     string         `yaml:"type"`
		Version  string         `yaml:"version"`
		Metadata []metadataItem `yaml:"metadata"`
	} `yaml:"spec"`
	Auth *struct {
		SecretStore string `yaml:"secretStore"`
	} `yaml:"auth"`
}

type secret struct {
	Kind     string            `yaml:"kind"`
	Metadata objectMeta        `yaml:"metadata"`
	Data     map[string]string `yaml:"data"`
}

type report struct {
	Step   string `json:"step"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Millis int64  `json:"ms"`
}

type overrides map[string]string

func (o overrides) String() string { return fmt.Sprint(map[string]string(o)) }

func (o overrides) Set(item string) error {
	name, value, found := strings.Cut(item, "=")
	if !found {
		return fmt.Errorf("-set wants name=value, got %q", item)
	}
	o[name] = value
	return nil
}

func readYAML(path string, into any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// properties resolves the Component's metadata into the map daprd hands to the store's Init.
func properties(c component, s secret) (map[string]string, error) {
	if c.APIVersion != "dapr.io/v1alpha1" || c.Kind != "Component" {
		return nil, fmt.Errorf("not a Dapr Component: apiVersion %q, kind %q", c.APIVersion, c.Kind)
	}
	if c.Spec.Type != "state.postgresql" || c.Spec.Version != "v2" {
		return nil, fmt.Errorf("component %s is %s %s, this harness runs state.postgresql v2", c.Metadata.Name, c.Spec.Type, c.Spec.Version)
	}
	if s.Kind != "Secret" {
		return nil, fmt.Errorf("the secret file holds a %q, not a Secret", s.Kind)
	}
	if c.Auth != nil && c.Auth.SecretStore != "" && c.Auth.SecretStore != "kubernetes" {
		return nil, fmt.Errorf("component %s reads secrets from store %q; only the built-in kubernetes store can be resolved here", c.Metadata.Name, c.Auth.SecretStore)
	}
	props := map[string]string{}
	for _, item := range c.Spec.Metadata {
		switch {
		case item.SecretKeyRef != nil && item.Value != nil:
			return nil, fmt.Errorf("metadata %s has both value and secretKeyRef", item.Name)
		case item.SecretKeyRef != nil:
			ref := item.SecretKeyRef
			key := ref.Key
			if key == "" {
				key = ref.Name
			}
			if ref.Name != s.Metadata.Name || c.Metadata.Namespace != s.Metadata.Namespace {
				return nil, fmt.Errorf("metadata %s refers to Secret %s/%s, but the Secret given is %s/%s",
					item.Name, c.Metadata.Namespace, ref.Name, s.Metadata.Namespace, s.Metadata.Name)
			}
			encoded, ok := s.Data[key]
			if !ok {
				return nil, fmt.Errorf("metadata %s refers to key %s, which Secret %s/%s does not have", item.Name, key, s.Metadata.Namespace, s.Metadata.Name)
			}
			decoded, err := base64.StdEncoding.DecodeString(encoded)
			if err != nil {
				return nil, fmt.Errorf("Secret %s/%s key %s is not base64", s.Metadata.Namespace, s.Metadata.Name, key)
			}
			props[item.Name] = string(decoded)
		case item.EnvRef != "":
			return nil, fmt.Errorf("metadata %s reads the sidecar's environment (envRef %s), which this harness does not have", item.Name, item.EnvRef)
		case item.Value != nil:
			props[item.Name] = fmt.Sprint(item.Value)
		default:
			props[item.Name] = ""
		}
	}
	return props, nil
}

type harness struct {
	name  string
	props map[string]string
	out   *json.Encoder
	fails int
}

// storeLog is the store's own log (its migrations, its cleanup), kept on stderr: stdout is the report.
var storeLog = func() logger.Logger {
	log := logger.NewLogger("dapr-state-harness")
	log.SetOutput(os.Stderr)
	return log
}()

func (h *harness) store(ctx context.Context) (*pgstate.PostgreSQL, error) {
	store := pgstate.NewPostgreSQLStateStore(storeLog).(*pgstate.PostgreSQL)
	err := store.Init(ctx, state.Metadata{Base: metadata.Base{Name: h.name, Properties: h.props}})
	return store, err
}

func (h *harness) step(name string, run func() (string, error)) {
	started := time.Now()
	detail, err := run()
	ok := err == nil
	if !ok {
		detail = err.Error()
		h.fails++
	}
	_ = h.out.Encode(report{Step: name, OK: ok, Detail: detail, Millis: time.Since(started).Milliseconds()})
}

func value(ctx context.Context, store state.Store, key string) (string, *string, error) {
	got, err := store.Get(ctx, &state.GetRequest{Key: key})
	if err != nil {
		return "", nil, err
	}
	return string(got.Data), got.ETag, nil
}

func (h *harness) steps(ctx context.Context) {
	var store *pgstate.PostgreSQL
	h.step("init", func() (string, error) {
		var err error
		store, err = h.store(ctx)
		return "Dapr's migrations ran; table and metadata table ready", err
	})
	if store == nil || h.fails > 0 {
		return
	}
	defer store.Close()
	prefix := fmt.Sprintf("harness-%d||", time.Now().UnixNano())
	key := func(name string) string { return prefix + name }

	h.step("set-get-delete", func() (string, error) {
		if err := store.Set(ctx, &state.SetRequest{Key: key("a"), Value: map[string]int{"n": 1}}); err != nil {
			return "", err
		}
		got, etag, err := value(ctx, store, key("a"))
		if err != nil {
			return "", err
		}
		if got != `{"n":1}` || etag == nil {
			return "", fmt.Errorf("get returned %q with etag %v", got, etag)
		}
		if err := store.Delete(ctx, &state.DeleteRequest{Key: key("a")}); err != nil {
			return "", err
		}
		if got, _, err = value(ctx, store, key("a")); err != nil || got != "" {
			return "", fmt.Errorf("after delete: %q, %v", got, err)
		}
		return "set, read back with an etag, deleted", nil
	})

	h.step("etag", func() (string, error) {
		if err := store.Set(ctx, &state.SetRequest{Key: key("b"), Value: "v1"}); err != nil {
			return "", err
		}
		_, first, err := value(ctx, store, key("b"))
		if err != nil {
			return "", err
		}
		if err := store.Set(ctx, &state.SetRequest{Key: key("b"), Value: "v2", ETag: first}); err != nil {
			return "", fmt.Errorf("write with the current etag: %w", err)
		}
		var etagErr *state.ETagError
		err = store.Set(ctx, &state.SetRequest{Key: key("b"), Value: "v3", ETag: first})
		if !errors.As(err, &etagErr) || etagErr.Kind() != state.ETagMismatch {
			return "", fmt.Errorf("write with a stale etag: want an etag mismatch, got %v", err)
		}
		err = store.Delete(ctx, &state.DeleteRequest{Key: key("b"), ETag: first})
		if !errors.As(err, &etagErr) || etagErr.Kind() != state.ETagMismatch {
			return "", fmt.Errorf("delete with a stale etag: want an etag mismatch, got %v", err)
		}
		got, _, err := value(ctx, store, key("b"))
		if err != nil || got != `"v2"` {
			return "", fmt.Errorf("after the refused writes: %q, %v", got, err)
		}
		return "current etag accepted; stale etag refused on set and delete", nil
	})

	h.step("first-write", func() (string, error) {
		const writers = 8
		var wg sync.WaitGroup
		errs := make([]error, writers)
		start := make(chan struct{})
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = store.Set(ctx, &state.SetRequest{Key: key("c"), Value: i,
					Options: state.SetStateOption{Concurrency: state.FirstWrite}})
			}()
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
			}
		}
		if won != 1 {
			return "", fmt.Errorf("%d of %d concurrent first writes succeeded, want 1: %v", won, writers, errs)
		}
		return fmt.Sprintf("1 of %d concurrent first writes succeeded", writers), nil
	})

	h.step("ttl-and-cleanup", func() (string, error) {
		err := store.Set(ctx, &state.SetRequest{Key: key("d"), Value: "short-lived", Metadata: map[string]string{"ttlInSeconds": "1"}})
		if err != nil {
			return "", err
		}
		if got, _, err := value(ctx, store, key("d")); err != nil || got == "" {
			return "", fmt.Errorf("right after the write: %q, %v", got, err)
		}
		time.Sleep(1500 * time.Millisecond)
		if got, _, err := value(ctx, store, key("d")); err != nil || got != "" {
			return "", fmt.Errorf("after the ttl: %q, %v", got, err)
		}
		rows := func() (n int, err error) {
			err = store.GetDB().QueryRow(ctx, "SELECT count(*) FROM "+h.props["tablePrefix"]+"state WHERE key = $1", key("d")).Scan(&n)
			return n, err
		}
		before, err := rows()
		if err != nil {
			return "", err
		}
		if err := store.CleanupExpired(); err != nil {
			return "", err
		}
		after, err := rows()
		if err != nil || before != 1 || after != 0 {
			return "", fmt.Errorf("expired row count before cleanup %d, after %d (%v)", before, after, err)
		}
		return "hidden once expired; removed by the store's cleanup", nil
	})

	h.step("multi", func() (string, error) {
		ops := []state.TransactionalStateOperation{
			state.SetRequest{Key: key("e"), Value: "e"},
			state.SetRequest{Key: key("f"), Value: "f"},
			state.DeleteRequest{Key: key("c")},
		}
		if err := store.Multi(ctx, &state.TransactionalStateRequest{Operations: ops}); err != nil {
			return "", err
		}
		stale := "00000000-0000-0000-0000-000000000000"
		failing := []state.TransactionalStateOperation{
			state.SetRequest{Key: key("g"), Value: "g"},
			state.SetRequest{Key: key("e"), Value: "e2", ETag: &stale},
		}
		if err := store.Multi(ctx, &state.TransactionalStateRequest{Operations: failing}); err == nil {
			return "", errors.New("a transaction with a stale etag succeeded")
		}
		for k, want := range map[string]string{"e": `"e"`, "f": `"f"`, "c": "", "g": ""} {
			if got, _, err := value(ctx, store, key(k)); err != nil || got != want {
				return "", fmt.Errorf("key %s: %q, want %q (%v)", k, got, want, err)
			}
		}
		return "3 operations applied together; a failing transaction applied nothing", nil
	})

	h.step("bulk-get", func() (string, error) {
		got, err := store.BulkGet(ctx, []state.GetRequest{{Key: key("e")}, {Key: key("f")}, {Key: key("missing")}}, state.BulkGetOpts{})
		if err != nil {
			return "", err
		}
		values := map[string]string{}
		for _, item := range got {
			values[strings.TrimPrefix(item.Key, prefix)] = string(item.Data)
		}
		if values["e"] != `"e"` || values["f"] != `"f"` || values["missing"] != "" {
			return "", fmt.Errorf("bulk get returned %v", values)
		}
		return "2 values and 1 missing key in one call", nil
	})
}

// sidecars: two stores (two daprd) increment shared counters with etag-guarded read-modify-writes.
func (h *harness) sidecars(ctx context.Context) {
	const keys, increments, maxRetries = 4, 50, 1000
	prefix := fmt.Sprintf("sidecars-%d||", time.Now().UnixNano())
	h.step("two-sidecars", func() (string, error) {
		stores := make([]*pgstate.PostgreSQL, 2)
		for i := range stores {
			store, err := h.store(ctx)
			if err != nil {
				return "", fmt.Errorf("sidecar %d init: %w", i, err)
			}
			defer store.Close()
			stores[i] = store
		}
		var wg sync.WaitGroup
		conflicts := make([]int, len(stores))
		errs := make([]error, len(stores))
		for i, store := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range keys * increments {
					k := fmt.Sprintf("%s%d", prefix, n%keys)
					for attempt := 0; ; attempt++ {
						if attempt == maxRetries {
							errs[i] = fmt.Errorf("key %s: still conflicting after %d attempts", k, maxRetries)
							return
						}
						raw, etag, err := value(ctx, store, k)
						if err != nil {
							errs[i] = err
							return
						}
						var count int
						if raw != "" {
							_ = json.Unmarshal([]byte(raw), &count)
						}
						req := &state.SetRequest{Key: k, Value: count + 1, ETag: etag}
						if etag == nil {
							req.Options.Concurrency = state.FirstWrite
						}
						err = store.Set(ctx, req)
						if err == nil {
							break
						}
						conflicts[i]++
					}
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return "", err
			}
		}
		for n := range keys {
			raw, _, err := value(ctx, stores[0], fmt.Sprintf("%s%d", prefix, n))
			if err != nil {
				return "", err
			}
			if raw != fmt.Sprint(len(stores)*increments) {
				return "", fmt.Errorf("counter %d is %s after %d increments: an update was lost", n, raw, len(stores)*increments)
			}
		}
		return fmt.Sprintf("%d increments each on %d shared keys, none lost; %d and %d conflicts retried",
			keys*increments, keys, conflicts[0], conflicts[1]), nil
	})
}

// firstStart: N stores start at the same instant, as every replica of a new deployment does.
func (h *harness) firstStart(ctx context.Context, replicas int) {
	h.step("first-start", func() (string, error) {
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, replicas)
		for i := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				store, err := h.store(ctx)
				errs[i] = err
				if store != nil {
					store.Close()
				}
			}()
		}
		close(start)
		wg.Wait()
		var failed []string
		for i, err := range errs {
			if err != nil {
				failed = append(failed, fmt.Sprintf("replica %d: %v", i, err))
			}
		}
		if len(failed) > 0 {
			return "", fmt.Errorf("%d of %d replicas failed to start: %s", len(failed), replicas, strings.Join(failed, "; "))
		}
		return fmt.Sprintf("%d replicas started at once", replicas), nil
	})
}

func main() {
	componentFile := flag.String("component", "", "rendered Dapr Component YAML")
	secretFile := flag.String("secret", "", "rendered Secret YAML the Component refers to")
	replicas := flag.Int("replicas", 8, "first-start: how many stores start at once")
	set := overrides{}
	flag.Var(set, "set", "name=value: override one Component metadata item (repeatable)")
	flag.Parse()
	if flag.NArg() != 1 || *componentFile == "" || *secretFile == "" {
		fmt.Fprintln(os.Stderr, "usage: dapr-state-harness -component FILE -secret FILE [-replicas N] [-set name=value] steps|sidecars|first-start")
		os.Exit(2)
	}
	var c component
	var s secret
	for path, into := range map[string]any{*componentFile: &c, *secretFile: &s} {
		if err := readYAML(path, into); err != nil {
			fmt.Fprintln(os.Stderr, "dapr-state-harness:", err)
			os.Exit(2)
		}
	}
	props, err := properties(c, s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dapr-state-harness:", err)
		os.Exit(2)
	}
	for name, v := range set {
		props[name] = v
	}
	h := &harness{name: c.Metadata.Name, props: props, out: json.NewEncoder(os.Stdout)}
	ctx := context.Background()
	switch flag.Arg(0) {
	case "steps":
		h.steps(ctx)
	case "sidecars":
		h.sidecars(ctx)
	case "first-start":
		h.firstStart(ctx, *replicas)
	default:
		fmt.Fprintf(os.Stderr, "dapr-state-harness: unknown scenario %q\n", flag.Arg(0))
		os.Exit(2)
	}
	if h.fails > 0 {
		os.Exit(1)
	}
}
