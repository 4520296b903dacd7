"""PostgreSQL connection URIs for Neon endpoints: URL-encoded credentials, TLS, direct or pooled host.

A Neon endpoint host such as `ep-cool-1.c-2.us-east-2.aws.neon.tech` has a pooled twin with
`-pooler` added to its first DNS label. Hosts of the local emulator carry a port and live on a
loopback address (`127.0.0.1:54321`); their pooled twin is PgBouncer on the same port of the
next loopback address (`127.0.0.2:54321`).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import quote, urlencode

NEON_PORT = 5432


def split_host(host: str) -> tuple[str, int]:
    """`name[:port]` -> (name, port); Neon's own hosts carry no port."""
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and name:
        return name, int(port)
    return host, NEON_PORT


def pooled_host(host: str) -> str:
    """The pooled (PgBouncer, transaction mode) twin of an endpoint's direct host."""
    name, port = split_host(host)
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        label, dot, rest = name.partition(".")
        pooled = name if label.endswith("-pooler") else f"{label}-pooler{dot}{rest}"
        return pooled if port == NEON_PORT and ":" not in host else f"{pooled}:{port}"
    if not address.is_loopback:
        raise ValueError(f"no pooled host is known for the address {name}")
    return f"{address + 1}:{port}"


def postgres_uri(
    user: str,
    password: str,
    host: str,
    database: str,
    *,
    channel_binding: bool = False,
) -> str:
    """`postgresql://user:password@host[:port]/database?sslmode=require[&channel_binding=require]`."""
    name, port = split_host(host)
    authority = f"{quote(user, safe='')}:{quote(password, safe='')}@{name}"
    if port != NEON_PORT or ":" in host:
        authority += f":{port}"
    params = {"sslmode": "require"}
    if channel_binding:
        params["channel_binding"] = "require"
    return f"postgresql://{authority}/{quote(database, safe='')}?{urlencode(params)}"
