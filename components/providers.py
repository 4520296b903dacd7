"""What every dynamic provider of the stack does the same way: check, diff, and errors without secrets.

- `InputChecker` checks the inputs of `check()` and collects one `CheckFailure` per bad key, so
  every problem is reported before anything is created; a secret input is never quoted. A value
  still unknown during a preview (`pulumi.output.Unknown`, also inside a list or dict) is never
  judged.
- `diff_from_state` compares the new inputs with what the state holds, without a call to the
  outside: the keys that force a replacement and the keys updated in place are named by each
  provider; an unknown new value counts as a change.
- `errors_without_secrets` turns an error into the provider's own, its message free of every
  secret of a connection string (`components.redaction`) and without the original exception,
  whose traceback and arguments may hold them.

The provider classes themselves stay in their modules: Pulumi stores each provider in the state
by module path and class name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from pulumi.dynamic import CheckFailure, CheckResult, DiffResult
from pulumi.output import Unknown

from components.defaults import MAX_NEON_NAME
from components.redaction import scrub


def is_unknown(value: Any) -> bool:
    """Whether `value` is, or holds, a value that is known only after an update (preview)."""
    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(is_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(is_unknown(v) for v in value)
    return False


def plain_inputs(props: dict[str, Any]) -> dict[str, Any]:
    """Inputs without the host's reserved keys (`__provider`), whole numbers as int.

    Over gRPC every number arrives as a float (protobuf Struct); Neon's integer fields reject 17.0.
    """
    return {
        k: int(v) if isinstance(v, float) and v.is_integer() else v
        for k, v in props.items()
        if not k.startswith("__")
    }


class InputChecker:
    """Checks the inputs of `check()`: defaults filled in, numbers normalized, one failure per bad key."""

    def __init__(self, news: dict[str, Any]):
        self.inputs = plain_inputs(news)
        self.failures: list[CheckFailure] = []

    def result(self) -> CheckResult:
        return CheckResult(self.inputs, self.failures)

    def fail(self, key: str, reason: str) -> None:
        self.failures.append(CheckFailure(key, reason))

    def known(self, key: str) -> bool:
        return not is_unknown(self.inputs.get(key))

    def default(self, key: str, value: Any) -> None:
        if self.inputs.get(key) is None:
            self.inputs[key] = value

    def rule(self, key: str, problem: Callable[[Any], str | None]) -> None:
        """Fail `key` with the reason `problem` gives for its value (None: the value is fine)."""
        if self.known(key):
            reason = problem(self.inputs.get(key))
            if reason:
                self.fail(key, reason)

    def string(self, key: str, *, required: bool = True, max_length: int = MAX_NEON_NAME, secret: bool = False) -> None:
        """A non-empty string of at most `max_length` characters; the reason quotes a `secret` value never."""
        value = self.inputs.get(key)
        if not self.known(key) or (value is None and not required):
            return
        if not isinstance(value, str) or not value.strip():
            got = f"a {type(value).__name__}" if secret else repr(value)
            self.fail(key, f"{key} must be a non-empty string, got {got}")
        elif len(value) > max_length:
            self.fail(key, f"{key} is longer than {max_length} characters")

    def one_of(self, key: str, choices: Iterable[str]) -> None:
        value, choices = self.inputs.get(key), sorted(choices)
        if self.known(key) and value not in choices:
            self.fail(key, f"{key} {value!r} is not one of {', '.join(choices)}")

    def integer(self, key: str, low: int, high: int) -> bool:
        """Whether the value of `key` is a known integer from `low` to `high`; fails the key if it is another value."""
        value = self.inputs.get(key)
        if not self.known(key):
            return False
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(key, f"{key} must be an integer from {low} to {high}, got {value!r}")
            return False
        return True

    def number(self, key: str) -> bool:
        """Whether the value of `key` is a known number (then a float); fails the key if it is no number."""
        value = self.inputs.get(key)
        if not self.known(key):
            return False
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, f"{key} must be a number, got {value!r}")
            return False
        self.inputs[key] = float(value)
        return True

    def boolean(self, key: str) -> None:
        value = self.inputs.get(key)
        if self.known(key) and not isinstance(value, bool):
            self.fail(key, f"{key} must be true or false, got {value!r}")


def differs(old: Any, new: Any) -> bool:
    """Whether a new input changes the value in state; numbers compare by value (1 == 1.0)."""
    if is_unknown(new):
        return True
    if isinstance(old, int | float) and isinstance(new, int | float):
        return float(old) != float(new)
    return old != new


def diff_from_state(
    olds: dict[str, Any],
    news: dict[str, Any],
    replace_keys: Iterable[str],
    update_keys: Iterable[str],
    delete_before_replace: bool = False,
) -> DiffResult:
    """Compare new inputs with the state; no call to the outside. Keys not listed never cause a change."""
    replaces = [k for k in replace_keys if differs(olds.get(k), news.get(k))]
    updates = [k for k in update_keys if differs(olds.get(k), news.get(k))]
    return DiffResult(
        changes=bool(replaces or updates),
        replaces=replaces,
        delete_before_replace=bool(replaces) and delete_before_replace,
    )


@contextmanager
def errors_without_secrets(
    raise_as: type[Exception], context: str, conninfo: str, catch: tuple[type[Exception], ...] = (Exception,)
) -> Iterator[None]:
    """Raise an error of `catch` again as `raise_as("<context>: <message>")`, the message without the
    secrets of `conninfo` in any spelling, and not chained to the original."""
    try:
        yield
    except catch as error:
        raise raise_as(f"{context}: {scrub(str(error), conninfo)}") from None
