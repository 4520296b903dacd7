"""Connection strings in messages: parsed as libpq parses them, shown without their secrets.

libpq takes a URI (`postgresql://` or `postgres://`) or a list of `key=value` pairs. Both are parsed
here by libpq itself (PQconninfoParse, through psycopg), so what is hidden is exactly what libpq
would use: the values of the options libpq marks as secret (`password`, `sslpassword`, ...), taken
from the string and from the environment (PGPASSWORD). A message never carries one of them in any
spelling it could take there (see `spellings`). A connection string is shown rebuilt from what libpq
parsed, the secrets replaced by `***`, never as it was written.

A string libpq refuses is neither shown nor described by libpq's message (which quotes pieces of
the string). Neither is a URI with a raw `@` after the end libpq gives its credentials (the first
`@` or `/`): its password held a raw `@` or `/`, and libpq would read the rest of it as the host,
port or database name, which messages do show.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote

import psycopg
from psycopg import pq
from psycopg.conninfo import make_conninfo

MASK = "***"
URI_PREFIXES = ("postgresql://", "postgres://")
WITHHELD = "(text withheld: it would show a password)"
# libpq's display characters: a secret option, and a debug option that is not shown by default.
_SECRET, _DEBUG = b"*", b"D"

_DOES_NOT_PARSE = (
    "connection string does not parse (libpq's message is withheld: it quotes the string); in a URI, "
    "percent-encode reserved characters of the user and password; in key=value form, quote a value "
    "with spaces in '...' and escape ' and \\ with a backslash"
)
_SPILLS = (
    "connection URI has a raw '@' after its credentials end (at the first '@' or '/'), so its password "
    "cannot be told from its host and database: percent-encode '@' as %40 and '/' as %2F"
)


class ConninfoError(ValueError):
    """The connection string cannot be used; the message quotes nothing of it."""


@dataclass(frozen=True)
class Conninfo:
    """What libpq reads in a connection string, ready for messages."""

    shown: str
    """The string rebuilt from what libpq parsed, every secret as ***."""
    options: dict[str, str]
    """The options parsed from the string, but the secret ones and libpq's debug options."""
    secrets: tuple[str, ...]
    """The secret values libpq would use: from the string and from the environment."""

    def scrub(self, text: str, *more_secrets: str) -> str:
        """`text` without these secrets (and `more_secrets`) in any spelling."""
        return hide(text, (*self.secrets, *more_secrets))


def parse_conninfo(conninfo: str) -> Conninfo:
    """The connection string as libpq parses it; ConninfoError if it refuses it or would misread it."""
    is_uri = conninfo.startswith(URI_PREFIXES)
    if is_uri and _spills(conninfo):
        raise ConninfoError(_SPILLS)
    # libpq reads a C string: what follows a NUL would be dropped unseen.
    if "\0" in conninfo:
        raise ConninfoError(_DOES_NOT_PARSE)
    try:
        parsed = [(o.keyword.decode(), o.val.decode(), o.dispchar) for o in pq.Conninfo.parse(conninfo.encode())
                  if o.val is not None]
    except (psycopg.Error, UnicodeError):
        raise ConninfoError(_DOES_NOT_PARSE) from None
    options = {key: value for key, value, display in parsed if display not in (_SECRET, _DEBUG)}
    secret_keys = [key for key, _, display in parsed if display == _SECRET]
    if is_uri:
        shown = _as_uri(conninfo.split("://", 1)[0], options, secret_keys)
    else:
        shown = make_conninfo("", **options, **dict.fromkeys(secret_keys, MASK))
    secrets = tuple(value for _, value, display in parsed if display == _SECRET and value) + _environment_secrets()
    return Conninfo(hide(shown, secrets), options, secrets)


def scrub(text: str, conninfo: str, *more_secrets: str) -> str:
    """`text` without the secrets of `conninfo` (and `more_secrets`) in any spelling.

    A string libpq refuses is never used, so no message holds anything of it: the secrets of the
    environment and `more_secrets` are hidden then.
    """
    try:
        return parse_conninfo(conninfo).scrub(text, *more_secrets)
    except ConninfoError:
        return hide(text, (*_environment_secrets(), *more_secrets))


def spellings(secret: str) -> set[str]:
    """A secret as it is, percent-encoded (in a URI), backslash-escaped (in key=value), percent-decoded,
    and escaped as repr() quotes it (psycopg's messages quote hosts so)."""
    escaped = secret.replace("\\", "\\\\").replace("'", "\\'")
    return {form for form in (secret, quote(secret, safe=""), escaped, unquote(secret), repr(secret)[1:-1]) if form}


def hide(text: str, secrets: Iterable[str]) -> str:
    """`text` with every spelling of every secret replaced by ***.

    One pass hides every occurrence; only a secret holding `*` could form again around a mask,
    and then the whole text is withheld.
    """
    forms = sorted({form for secret in secrets if secret for form in spellings(secret)}, key=len, reverse=True)
    if not forms:
        return text
    hidden = re.sub("|".join(map(re.escape, forms)), MASK, text)
    return WITHHELD if any(form in hidden for form in forms) else hidden


def _spills(uri: str) -> bool:
    """Whether a raw `@` follows the first `@` or `/` after the scheme, where libpq ends the credentials."""
    rest = uri.split("://", 1)[1]
    end = re.search("[@/]", rest)
    return end is not None and "@" in rest[end.end():]


def _environment_secrets() -> tuple[str, ...]:
    """Secret defaults libpq takes from the environment (PGPASSWORD, a service file)."""
    return tuple(o.val.decode(errors="surrogateescape") for o in pq.Conninfo.get_defaults()
                 if o.dispchar == _SECRET and o.val)


def _as_uri(scheme: str, options: dict[str, str], secret_keys: list[str]) -> str:
    """`scheme://user:***@host:port,.../dbname?key=value&...` from parsed options."""
    rest = dict(options)
    user = quote(rest.pop("user", ""), safe="")
    credentials = f"{user}:{MASK}@" if "password" in secret_keys else f"{user}@" if user else ""
    hosts, ports = rest.get("host", "").split(","), rest.get("port", "").split(",")
    netloc = ""
    # libpq reads `h1,h2` as two hosts with a default port each (`,`): hosts without ports of their own,
    # or an empty host, stay parameters.
    if all(hosts) and (len(hosts) == 1 or len(ports) == len(hosts)):
        del rest["host"]
        if len(ports) == len(hosts) and (len(hosts) > 1 or ports[0]):
            del rest["port"]
        else:
            ports = [""]
        netloc = ",".join(
            _uri_host(host) + (f":{quote(port, safe='')}" if port else "")
            for host, port in zip(hosts, ports, strict=True)
        )
    path = f"/{quote(rest.pop('dbname'), safe='')}" if rest.get("dbname") else ""
    params = [f"{key}={quote(value, safe='')}" for key, value in rest.items()]
    params += [f"{key}={MASK}" for key in secret_keys if key != "password"]
    return f"{scheme}://{credentials}{netloc}{path}" + (f"?{'&'.join(params)}" if params else "")


def _uri_host(host: str) -> str:
    """An IPv6 address in brackets, anything else percent-encoded (libpq decodes hosts)."""
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return quote(host, safe="")
    return f"[{host}]"
