"""PostgreSQL credentials for Neon endpoints: one value rendered as a connection URI and as libpq's variables.

A Neon endpoint host such as `ep-cool-1.c-2.us-east-2.aws.neon.tech` has a pooled twin with
`-pooler` added to its first DNS label. Hosts of the local emulator carry a port and live on a
loopback address (`127.0.0.1:54321`); their pooled twin is PgBouncer on the same port of the
next loopback address (`127.0.0.2:54321`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

NEON_PORT = 5432
REQUIRE = "require"
# libpq's environment variable for each connection option the credentials set.
_ENVIRONMENT = {"sslmode": "PGSSLMODE", "channel_binding": "PGCHANNELBINDING", "connect_timeout": "PGCONNECT_TIMEOUT"}


def split_host(host: str) -> tuple[str, int]:
    """`name[:port]` -> (name, port); Neon's own hosts carry no port."""
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and name:
        return name, int(port)
    return host, NEON_PORT


def _join_host(name: str, port: int, written: str) -> str:
    """`name`, with `:port` when the port is not Neon's or the host it comes from (`written`) names one."""
    return f"{name}:{port}" if port != NEON_PORT or ":" in written else name


def pooled_host(host: str) -> str:
    """The pooled (PgBouncer, transaction mode) twin of an endpoint's direct host."""
    name, port = split_host(host)
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        label, dot, rest = name.partition(".")
        pooled = name if label.endswith("-pooler") else f"{label}-pooler{dot}{rest}"
        return _join_host(pooled, port, host)
    if not address.is_loopback:
        raise ValueError(f"no pooled host is known for the address {name}")
    return f"{address + 1}:{port}"


@dataclass(frozen=True)
class Credentials:
    """One login to one database over TLS (`sslmode=require`, and `channel_binding=require` when
    asked), with a `connect_timeout` in seconds when one is given (long enough for a suspended Neon
    compute to wake): the URI and the PG* variables are both rendered from it, so they cannot disagree.

    `host` is an endpoint host as Neon or the emulator reports it, `name[:port]`. The password is
    left out of repr().
    """

    user: str
    password: str = field(repr=False)
    host: str
    database: str
    channel_binding: bool = False
    connect_timeout: int | None = None

    def uri(self) -> str:
        """`postgresql://user:password@host[:port]/database?sslmode=require[&channel_binding=require][&connect_timeout=N]`."""
        name, port = split_host(self.host)
        authority = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}@{_join_host(name, port, self.host)}"
        return f"postgresql://{authority}/{quote(self.database, safe='')}?{urlencode(self._options())}"

    def environment(self) -> dict[str, str]:
        """libpq's variables: PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE[, PGCHANNELBINDING][,
        PGCONNECT_TIMEOUT]."""
        name, port = split_host(self.host)
        values = {
            "PGHOST": name,
            "PGPORT": str(port),
            "PGDATABASE": self.database,
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
        }
        return {**values, **{_ENVIRONMENT[key]: value for key, value in self._options().items()}}

    def _options(self) -> dict[str, str]:
        options = {"sslmode": REQUIRE}
        if self.channel_binding:
            options["channel_binding"] = REQUIRE
        if self.connect_timeout is not None:
            options["connect_timeout"] = str(self.connect_timeout)
        return options


def postgres_uri(user: str, password: str, host: str, database: str, *, channel_binding: bool = False) -> str:
    """The URI of `Credentials(user, password, host, database, channel_binding)`."""
    return Credentials(user, password, host, database, channel_binding).uri()
