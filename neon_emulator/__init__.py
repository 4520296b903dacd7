"""The local Neon emulator: a fake of the Neon API v2, checked against Neon's OpenAPI document, on real PostgreSQL.

It depends on nothing of the program it stands in for (`components/`): what it knows of Neon
comes from Neon's own documents, so a mistake of the program is not copied into its test double.

- `fake`: NeonFake, the control plane (state, dispatch and the 423 lock, call log, shared lookups);
  `state`: the state objects, ids, passwords and errors;
- `projects`, `branches`, `endpoints`, `roles`, `databases`, `operations`, `connections`: the
  handlers of each resource; `limits`: compute sizes and the Free plan;
- `api_server`: the HTTP server; `spec`: the pinned OpenAPI document and the validator;
  `faults`: fault injection; `computes`: a branch's cluster; `servers`: throwaway PostgreSQL and
  PgBouncer (also the tests' proving ground); `__main__`: `python -m neon_emulator`.
"""
