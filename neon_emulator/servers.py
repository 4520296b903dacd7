"""Throwaway PostgreSQL and PgBouncer servers for the local Neon emulator, tests and benchmarks.

PostgreSQL is started from the installed binaries (PG_BIN overrides the directory) with SCRAM
password authentication over TCP on a free loopback port. PgBouncer runs in transaction mode
in front of it, standing in for Neon's `-pooler` endpoint. Both refuse to run as root, so when
this process is root the servers run as the `postgres` OS user.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

SUPERUSER = "postgres"
# The databases every PostgreSQL cluster has from initdb.
SYSTEM_DATABASES = ("postgres", "template0", "template1")


def find_pg_bin() -> Path:
    """Directory of initdb/pg_ctl: $PG_BIN, else the newest /usr/lib/postgresql/*/bin."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if not candidates:
        raise RuntimeError("no PostgreSQL binaries found: install postgresql or set PG_BIN")
    return Path(candidates[-1])


def find_pgbouncer() -> str:
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None)
    if not found:
        raise RuntimeError("pgbouncer not found: install the pgbouncer package")
    return found


POSTGRES_ADDRESS = "127.0.0.1"
POOLER_ADDRESS = "127.0.0.2"


def free_port() -> int:
    """A TCP port free on both loopback addresses (PostgreSQL on one, PgBouncer on the other)."""
    while True:
        with socket.socket() as s:
            s.bind((POSTGRES_ADDRESS, 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as s:
                s.bind((POOLER_ADDRESS, port))
            return port
        except OSError:
            continue


def _server_user() -> tuple[int, int] | None:
    """(uid, gid) to run servers as when we are root, else None."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    ids = _server_user()
    if ids:
        kwargs.update(user=ids[0], group=ids[1], extra_groups=[])
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


def _popen(args: list[str], **kwargs) -> subprocess.Popen:
    ids = _server_user()
    if ids:
        kwargs.update(user=ids[0], group=ids[1], extra_groups=[])
    return subprocess.Popen(args, **kwargs)


def _make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate, so clients can use sslmode=require as they do with Neon."""
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )
    os.chmod(key, 0o600)
    ids = _server_user()
    if ids:
        os.chown(cert, *ids)
        os.chown(key, *ids)
    return cert, key


def url(user: str, password: str, host: str, port: int, database: str, **params: str) -> str:
    """`postgresql://user:password@host:port/database[?params]`, user, password and database URL-encoded."""
    authority = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}"
    return f"postgresql://{authority}/{quote(database, safe='')}" + (f"?{urlencode(params)}" if params else "")


@dataclass
class PostgresServer:
    """A running throwaway cluster. `password` is the superuser's."""

    directory: Path
    port: int
    password: str
    pg_bin: Path
    cert: Path
    key: Path
    host: str = POSTGRES_ADDRESS

    def url(self, database: str = "postgres", user: str = SUPERUSER, password: str | None = None) -> str:
        return url(user, self.password if password is None else password, self.host, self.port, database)

    def stop(self) -> None:
        """Stop the server and remove its files."""
        try:
            _run([str(self.pg_bin / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "immediate", "stop"])
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres(base: Path | None = None) -> PostgresServer:
    pg_bin = find_pg_bin()
    directory = Path(tempfile.mkdtemp(prefix="neon-stack-pg-", dir=base))
    password = secrets.token_urlsafe(24)
    pwfile = directory / "pwfile"
    pwfile.write_text(password + "\n")
    ids = _server_user()
    if ids:
        os.chown(directory, *ids)
        os.chown(pwfile, *ids)
    data = directory / "data"
    _run(
        [
            str(pg_bin / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=scram-sha-256",
            f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync", "--locale=C",
        ]
    )
    pwfile.unlink()
    cert, key = _make_certificate(directory)
    port = _start_cluster(pg_bin, directory, cert, key)
    return PostgresServer(directory=directory, port=port, password=password, pg_bin=pg_bin, cert=cert, key=key)


@dataclass
class PgBouncer:
    """A running PgBouncer in transaction mode in front of a PostgresServer.

    It listens on the same port as PostgreSQL, on the next loopback address: the local
    stand-in for Neon's `-pooler` host (an endpoint's pooled twin, `127.0.0.2:<port>` beside
    `127.0.0.1:<port>`).

    Like Neon's pooler, it lets in every role of the server: it looks up a role's SCRAM secret
    with `auth_query` and then logs in to PostgreSQL with the client's own SCRAM keys, over the
    server's Unix socket (so the server's TCP rules apply to direct clients only). Who may connect
    is in its own hba file (`hba_file`, `auth_type = hba`), open to every address at first;
    `neon_emulator.network` rewrites it for IP Allow.
    """

    directory: Path
    port: int
    process: subprocess.Popen
    host: str = POOLER_ADDRESS

    def url(self, database: str, user: str, password: str) -> str:
        return url(user, password, self.host, self.port, database)

    @property
    def hba_file(self) -> Path:
        return self.directory / "pg_hba.conf"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()


# Who may connect, in pg_hba.conf form: PostgreSQL reads the file of its data directory, PgBouncer
# (auth_type = hba) its own. Unix sockets (the emulator's PgBouncer reaching PostgreSQL) are always
# let in; this is every TCP address.
OPEN_HBA = "local all all scram-sha-256\nhost all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n"


def write_server_file(path: Path, text: str) -> None:
    """A file the servers (running as the `postgres` OS user when we are root) can read."""
    path.write_text(text)
    ids = _server_user()
    if ids:
        os.chown(path, *ids)


def _write_auth_file(path: Path, users: dict[str, str]) -> None:
    def q(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    path.write_text("".join(f"{q(u)} {q(p)}\n" for u, p in users.items()))
    ids = _server_user()
    if ids:
        os.chown(path, *ids)
    os.chmod(path, 0o600)


def start_pgbouncer(postgres: PostgresServer, pool_size: int = 10) -> PgBouncer:
    directory = postgres.directory / "pgbouncer"
    directory.mkdir()
    port = postgres.port
    auth_file = directory / "userlist.txt"
    _write_auth_file(auth_file, {SUPERUSER: postgres.password})
    hba_file = directory / "pg_hba.conf"
    write_server_file(hba_file, OPEN_HBA)
    ini = directory / "pgbouncer.ini"
    ini.write_text(
        f"""[databases]
* = host={postgres.directory} port={postgres.port}

[pgbouncer]
listen_addr = {POOLER_ADDRESS}
listen_port = {port}
unix_socket_dir =
auth_type = hba
auth_hba_file = {hba_file}
auth_file = {auth_file}
auth_user = {SUPERUSER}
admin_users = {SUPERUSER}
auth_query = SELECT usename, passwd FROM pg_shadow WHERE usename=$1
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 500
ignore_startup_parameters = extra_float_digits
server_tls_sslmode = prefer
client_tls_sslmode = allow
client_tls_cert_file = {postgres.cert}
client_tls_key_file = {postgres.key}
logfile = {directory / 'pgbouncer.log'}
"""
    )
    ids = _server_user()
    if ids:
        os.chown(directory, *ids)
        os.chown(ini, *ids)
    # PgBouncer writes every log line to stderr too: a file, since a pipe nobody drains fills up
    # (64 KiB) and then blocks PgBouncer for good.
    stderr = directory / "pgbouncer.stderr"
    with stderr.open("wb") as sink:
        process = _popen([find_pgbouncer(), str(ini)], stdout=subprocess.DEVNULL, stderr=sink)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited: {stderr.read_text(errors='replace')}")
        try:
            socket.create_connection((POOLER_ADDRESS, port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.02)
    else:
        process.kill()
        raise RuntimeError("pgbouncer did not start listening within 10 s")
    return PgBouncer(directory=directory, port=port, process=process)


def clone_postgres(source: PostgresServer, base: Path | None = None, standby: bool = False) -> PostgresServer:
    """A new cluster started from a physical copy (pg_basebackup) of a running one.

    The copy keeps the source's data, roles, passwords and superuser password; it gets its own
    directory, certificate and port. The local stand-in for creating a Neon branch; with `standby`
    it stays a hot standby streaming from the source (read-only, as Neon's read replicas are).
    """
    return _start_copy(source, base, lambda data: _base_backup(source, data, standby))


def _start_copy(
    origin: PostgresServer | PostgresTemplate, base: Path | None, copy_data: Callable[[Path], None]
) -> PostgresServer:
    """A cluster in a new directory whose data `copy_data(data directory)` makes, started with its
    own certificate and port and `origin`'s superuser password; a failure leaves nothing behind."""
    directory = Path(tempfile.mkdtemp(prefix="neon-stack-pg-", dir=base))
    ids = _server_user()
    if ids:
        os.chown(directory, *ids)
    try:
        copy_data(directory / "data")
        cert, key = _copy_certificate(origin.cert, origin.key, directory)
        port = _start_cluster(origin.pg_bin, directory, cert, key)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return PostgresServer(
        directory=directory, port=port, password=origin.password, pg_bin=origin.pg_bin, cert=cert, key=key
    )


@dataclass
class PostgresTemplate:
    """A stopped, initialised cluster: new clusters start as copies of it, without initdb."""

    directory: Path
    password: str
    pg_bin: Path
    cert: Path
    key: Path

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def make_postgres_template(base: Path | None = None, prepare=None) -> PostgresTemplate:
    """initdb once; `prepare(server)` may set the cluster up (roles...) before it is stopped."""
    server = start_postgres(base)
    try:
        if prepare is not None:
            prepare(server)
        stop_postgres(server)
    except BaseException:
        server.stop()
        raise
    return PostgresTemplate(server.directory, server.password, server.pg_bin, server.cert, server.key)


def start_postgres_from_template(template: PostgresTemplate, base: Path | None = None) -> PostgresServer:
    """A new running cluster copied from a template (same superuser password, own port)."""
    def copy(data: Path) -> None:
        subprocess.run(["cp", "-a", str(template.directory / "data"), str(data)], check=True)

    return _start_copy(template, base, copy)


def _copy_certificate(cert: Path, key: Path, directory: Path) -> tuple[Path, Path]:
    """The server certificate and key of another cluster, copied into `directory` (mode kept)."""
    copies = directory / "server.crt", directory / "server.key"
    for source, target in zip((cert, key), copies, strict=True):
        shutil.copy2(source, target)
        ids = _server_user()
        if ids:
            os.chown(target, *ids)
    return copies


def _start_cluster(pg_bin: Path, directory: Path, cert: Path, key: Path, port: int | None = None) -> int:
    """Start the cluster in `directory/data` (TLS on, durability off) on `port` (default: a free one); return it."""
    port = port or free_port()
    options = (
        f"-c listen_addresses={POSTGRES_ADDRESS} -c port={port} -c unix_socket_directories={directory} "
        f"-c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    pg_ctl = str(pg_bin / "pg_ctl")
    _run([pg_ctl, "-D", str(directory / "data"), "-l", str(directory / "log"), "-o", options, "-w", "start"])
    return port


def stop_postgres(server: PostgresServer) -> None:
    """Stop the server (its connections are closed), keeping its files for `start_postgres_again`."""
    _run([str(server.pg_bin / "pg_ctl"), "-D", str(server.directory / "data"), "-m", "fast", "-w", "stop"])


def start_postgres_again(server: PostgresServer) -> None:
    """Start a server stopped by `stop_postgres` on its port, so URIs naming it connect again."""
    _start_cluster(server.pg_bin, server.directory, server.cert, server.key, server.port)


def replace_postgres_data(target: PostgresServer, source: PostgresServer, standby: bool = False) -> None:
    """`target` restarted on its port with a physical copy (pg_basebackup) of `source`'s data.

    The local stand-in for restoring a Neon branch from another: data, roles and passwords become
    the source's, while the host and port stay, so URIs naming `target` still connect. The superuser
    password becomes the source's (within one emulator every cluster has the same). With `standby`,
    `target` becomes a hot standby of `source` again (a read replica of a restored branch).
    """
    if (target.directory / "data" / "postmaster.pid").exists():
        stop_postgres(target)
    shutil.rmtree(target.directory / "data")
    _base_backup(source, target.directory / "data", standby)
    target.password = source.password
    start_postgres_again(target)


def _base_backup(source: PostgresServer, data: Path, standby: bool = False) -> None:
    """A physical copy of the running `source` cluster in the new directory `data`; with `standby`,
    configured to keep streaming from `source` as a hot standby."""
    _run(
        [
            str(source.pg_bin / "pg_basebackup"), "-D", str(data), "-h", source.host, "-p", str(source.port),
            "-U", SUPERUSER, "-X", "stream", "--checkpoint=fast", "--no-sync", "--no-password",
            *(["--write-recovery-conf"] if standby else []),
        ],
        env={**os.environ, "PGPASSWORD": source.password},
    )
