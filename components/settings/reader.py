"""Reading raw config values, one key at a time: `Reader` turns each into its type and records every
problem with its key; the checks below say why a string value would be refused later, or None.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from components.defaults import (
    BRANCH_TTL_MAX_SECONDS,
    BRANCH_TTL_MIN_SECONDS,
    GO_MAX_DURATION_NS,
    KUBERNETES_MAX_LABEL,
    KUBERNETES_MAX_SUBDOMAIN,
    MAX_NEON_NAME,
    PG_MAX_TIMEOUT_MS,
    PRIMARY_BRANCH,
    compute_units_problem,
)
from components.settings.keys import DEFAULTS, qualified

# Patterns are applied with fullmatch; every digit class is ASCII [0-9] (Python's \d and int() also
# take other scripts' digits, `_`, `+` and spaces).
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_INTEGER = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_PG_DURATION = re.compile(r"(0|[1-9][0-9]*)(ms|s|min|h|d)?")  # PostgreSQL reads 010 as octal (8), 08 not at all
GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")
_GO_DURATION_PART = re.compile(r"([0-9]+)(?:\.([0-9]+))?(ns|us|µs|ms|s|m|h)")
_TTL = re.compile(r"([1-9][0-9]{0,5})(h|d)")
_TTL_UNIT_SECONDS = {"h": 3600, "d": 86400}
_NEON_ID = re.compile(r"[a-z0-9-]{1,60}")  # project and organization ids in Neon's API

_PG_UNIT_MS = {"": 1, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_GO_UNIT_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_MAX_DIGITS = 20  # more than any range here needs; int() refuses strings of more than 4300 digits


class Reader:
    """Reads raw config values (strings, or JSON for arrays) and records every problem."""

    def __init__(self, raw: Mapping[str, Any]):
        self.raw = raw
        self.problems: list[str] = []

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{qualified(key)}: {message}")

    def _value(self, key: str) -> Any:
        value = self.raw.get(qualified(key))
        return DEFAULTS[key] if value is None else value

    def string(self, key: str, check: Callable[[str], str | None] | None = None) -> str:
        value = self._value(key)
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {shown(value)}")
            return DEFAULTS.get(key, "")  # keys of other namespaces (neon:apiUrl) have no default here
        value = value.strip()
        problem = check(value) if check else None
        if problem:
            self.fail(key, problem)
        return value

    def integer(self, key: str, low: int, high: int) -> int:
        value = self._value(key)
        text = _number_text(value)
        if text is None or not _INTEGER.fullmatch(text):
            self.fail(key, f"expected an integer (ASCII digits), got {shown(value)}")
            return DEFAULTS[key]
        if len(text) > _MAX_DIGITS:
            self.fail(key, f"a number of {len(text)} digits is out of range ({low} to {high})")
            return DEFAULTS[key]
        number = int(text)
        if not low <= number <= high:
            self.fail(key, f"{number} is out of range ({low} to {high})")
        return number

    def boolean(self, key: str) -> bool:
        value = self._value(key)
        if isinstance(value, bool):
            return value
        text = value.strip().lower() if isinstance(value, str) else None
        if text in ("true", "false"):
            return text == "true"
        self.fail(key, f"expected true or false, got {shown(value)}")
        return DEFAULTS[key]

    def compute_units(self, key: str) -> float:
        value = self._value(key)
        text = _number_text(value)
        if text is None or not _DECIMAL.fullmatch(text):
            self.fail(key, f"expected a number of compute units such as 0.25, got {shown(value)}")
            return float(DEFAULTS[key])
        units = float(text)
        problem = compute_units_problem(units)
        if problem:
            self.fail(key, problem)
        return units

    def string_list(self, key: str) -> list[str]:
        value = self._value(key)
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else []
            except (ValueError, RecursionError):  # not JSON, an integer of over 4300 digits, or nested too deep
                self.fail(key, "expected a list of strings (set it with `pulumi config set --path`)")
                return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"expected a list of strings, got {shown(value)}")
            return []
        return [v.strip() for v in value]

    def app_map(self, key: str, apps: list[str]) -> dict[str, str]:
        """Entries `app=value` of a list setting, keyed by app."""
        mapping: dict[str, str] = {}
        for entry in self.string_list(key):
            app, sep, value = entry.partition("=")
            app, value = app.strip(), value.strip()
            if not sep or not value:
                self.fail(key, f"entry {shown(entry)} is not of the form app=value")
            elif app not in apps:
                self.fail(key, f"entry {shown(entry)} names {shown(app)}, which is not in neon-stack:apps")
            elif app in mapping:
                self.fail(key, f"app {shown(app)} appears more than once")
            else:
                mapping[app] = value
        return mapping



def shown(value: Any, limit: int = 80) -> str:
    """A raw value for a message: its repr, cut short (a value may be a whole JSON document)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an integer of over 4300 digits, or nesting too deep to print
        return "a value too large to show"
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _number_text(value: Any) -> str | None:
    """A numeric setting as text (Pulumi passes text; tests and stack files may pass numbers), or None."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        return str(value).strip()
    except ValueError:  # an integer of over 4300 digits
        return None


def one_of(choices: tuple[str, ...] | frozenset[str]) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if value not in choices:
            return f"{shown(value)} is not one of {', '.join(sorted(choices))}"
        return None

    return check


def matches(
    pattern: re.Pattern[str], what: str, max_length: int = KUBERNETES_MAX_SUBDOMAIN
) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if not pattern.fullmatch(value) or len(value) > max_length:
            return f"{shown(value)} is not {what}"
        return None

    return check


def is_dns_label(value: str, max_length: int = KUBERNETES_MAX_LABEL) -> bool:
    return bool(DNS_LABEL.fullmatch(value)) and len(value) <= max_length


def http_url(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        port = parts.port  # ValueError unless absent or a number up to 65535
    except ValueError:
        return "is not a URL (malformed host or port)"  # not shown: it may hold a password
    if "@" in parts.netloc:
        return "must not hold a user or password (the API key is neon:apiKey)"
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        return f"{shown(value)} is not an http(s) URL"
    return None


def neon_id(value: str) -> str | None:
    if value and not _NEON_ID.fullmatch(value):
        return f"{shown(value)} is not a Neon id (1 to 60 lowercase letters, digits and -)"
    return None


def neon_name(value: str) -> str | None:
    if len(value) > MAX_NEON_NAME:
        return f"is {len(value)} characters long; Neon allows {MAX_NEON_NAME}"
    return None


def branch_name_problem(name: str) -> str | None:
    """A name Neon accepts for a branch the stack makes: not the default branch's, which the project has."""
    if not name or len(name) > MAX_NEON_NAME:
        return f"{shown(name)} is not a valid branch name (1 to {MAX_NEON_NAME} characters)"
    if name == PRIMARY_BRANCH:
        return f"{shown(name)} is the name of the project's default branch"
    return None


def pg_timeout(value: str) -> str | None:
    """lock_timeout and statement_timeout are int milliseconds: a whole number and unit, at most 2147483647 ms."""
    match = _PG_DURATION.fullmatch(value)
    if not match:
        return (
            f"{shown(value)} is not a PostgreSQL duration such as 10s (a whole number without leading zeros, "
            "then ms, s, min, h or d)"
        )
    digits, unit = match[1], match[2] or ""
    if len(digits) > _MAX_DIGITS or int(digits) * _PG_UNIT_MS[unit] > PG_MAX_TIMEOUT_MS:
        return f"{shown(value)} is over PostgreSQL's limit of {PG_MAX_TIMEOUT_MS} ms (about 24.8 days)"
    return None


def _go_duration_ns(value: str) -> int | None:
    """Nanoseconds of a Go duration as time.ParseDuration reads it (each part cut to whole nanoseconds),
    or None if `value` is not one; a part too large for int64 counts as GO_MAX_DURATION_NS + 1."""
    if not GO_DURATION.fullmatch(value):
        return None
    total = 0
    for whole, fraction, unit in _GO_DURATION_PART.findall(value):
        significant = whole.lstrip("0") or "0"
        if len(significant) > _MAX_DIGITS:
            return GO_MAX_DURATION_NS + 1
        digits = fraction[:_MAX_DIGITS]  # finer than a nanosecond of any unit
        total += int(significant) * _GO_UNIT_NS[unit]
        if digits:
            total += int(digits) * _GO_UNIT_NS[unit] // 10 ** len(digits)
    return total


def dapr_timeout(value: str) -> str | None:
    """Dapr honours an initTimeout above zero that fits time.Duration: daprd 1.18 gives up at once on
    zero and takes its 5s default for what it cannot parse (an overflow); its main branch takes 5s for both."""
    nanoseconds = _go_duration_ns(value)
    if nanoseconds is None:
        return f"{shown(value)} is not a duration such as 30s"
    if not 0 < nanoseconds <= GO_MAX_DURATION_NS:
        return f"{shown(value)} must be above zero and at most 2562047h (Go's time.Duration), or Dapr ignores it"
    return None


def ttl_seconds(value: str) -> int | None:
    """Seconds of a branch time-to-live such as `7d` or `12h` (whole hours or days), or None if it is not one."""
    match = _TTL.fullmatch(value)
    return int(match[1]) * _TTL_UNIT_SECONDS[match[2]] if match else None


def branch_ttl(value: str) -> str | None:
    """Neon takes an expiry at most 30 days ahead; below an hour a branch could expire during its own `up`."""
    if not value:
        return None
    seconds = ttl_seconds(value)
    if seconds is None:
        return f"{shown(value)} is not a duration such as 7d or 12h (a whole number of hours or days)"
    if not BRANCH_TTL_MIN_SECONDS <= seconds <= BRANCH_TTL_MAX_SECONDS:
        return f"{shown(value)} is outside Neon's limits for a branch expiry (1h to 30d)"
    return None
