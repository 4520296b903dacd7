"""The base of every Neon dynamic provider: credentials and a client per call.

Credentials are read in `configure()` (stack config `neon:apiUrl`, secret `neon:apiKey`, else the
`NEON_API_KEY` environment variable) and `__getstate__` keeps them out of every pickle, so the
provider stored in state never holds them. A client is made per call: nothing unpicklable
lives on the provider. Checks and diffs use `components.providers`; the read-write endpoint
helpers are in `components.neon.endpoint`.
"""

from __future__ import annotations

import os
from typing import Any

from pulumi.dynamic import ConfigureRequest, ResourceProvider

from components.defaults import NEON_API_URL, PG_MAX_IDENTIFIER_BYTES
from components.neon.client import NeonClient
from components.neon.session import ClientPolicy
from components.providers import InputChecker
from components.settings import NEON_API_KEY_ENV, NEON_API_KEY_KEY, NEON_API_URL_KEY

_RUNTIME_ONLY = ("_api_key", "_api_url")
BRANCH_OBJECT_KEYS = ("project_id", "branch_id", "name")
"""What identifies a role or a database: names are unique per branch, so any change replaces it."""


class NeonProvider(ResourceProvider):
    """Base of the Neon providers. `policy` (timeouts, retries, polling) is the only pickled attribute."""

    def __init__(self, policy: ClientPolicy | None = None):
        super().__init__()
        self.policy = policy

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in _RUNTIME_ONLY}

    def configure(self, req: ConfigureRequest) -> None:
        self._api_url = req.config.get(NEON_API_URL_KEY) or None
        self._api_key = req.config.get(NEON_API_KEY_KEY) or None

    def client(self) -> NeonClient:
        api_key = getattr(self, "_api_key", None) or os.environ.get(NEON_API_KEY_ENV, "")
        return NeonClient(api_key, getattr(self, "_api_url", None) or NEON_API_URL, self.policy)


def check_branch_object(c: InputChecker) -> None:
    """The inputs of a role or database: its project, branch and name, and whether to adopt one of that name."""
    c.default("adopt", False)
    c.string("project_id")
    c.string("branch_id")
    c.string("name", max_length=PG_MAX_IDENTIFIER_BYTES)
    c.boolean("adopt")


def branch_object_id(inputs: dict[str, Any]) -> str:
    """The id of a role or database: `project/branch/name`."""
    return "/".join(inputs[key] for key in BRANCH_OBJECT_KEYS)
