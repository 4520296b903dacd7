"""Connection URIs as Neon gives them: `connection_uris` of creations and `GET .../connection_uri`.

Every endpoint of a branch answers on the branch's cluster: the direct host is PostgreSQL
(`127.0.0.1:<port>`), the pooled host (Neon's `-pooler` twin) is the PgBouncer beside it
(`127.0.0.2:<port>`). URIs require TLS; the direct one also requires SCRAM channel binding, the
pooled one does not, since PgBouncer 1.18 offers none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from neon_emulator.computes import Compute
from neon_emulator.servers import url
from neon_emulator.state import ApiError, BranchState

if TYPE_CHECKING:
    from neon_emulator.fake import Handler, NeonFake


def postgres_uri(compute: Compute, role: str, password: str, database: str, *, pooled: bool = False) -> str:
    if pooled:
        return url(role, password, compute.pgbouncer.host, compute.pgbouncer.port, database, sslmode="require")
    postgres = compute.postgres
    return url(role, password, postgres.host, postgres.port, database, sslmode="require", channel_binding="require")


def connection_details(branch: BranchState, database: str, role: str) -> dict[str, Any]:
    """One item of `connection_uris` for a branch with a read_write endpoint: the direct URI and its parts."""
    password = branch.passwords[role] or ""
    return {
        "connection_uri": postgres_uri(branch.compute, role, password, database),
        "connection_parameters": {
            "database": database,
            "password": password,
            "role": role,
            "host": branch.compute.host,
            "pooler_host": branch.compute.pooler_host,
        },
    }


def connection_uri(fake: NeonFake, params, query, body):
    project = fake.project(params)
    branch = project.branch(query.get("branch_id", [project.default_branch.id])[0])
    if "endpoint_id" in query:
        endpoint = project.endpoints.get(query["endpoint_id"][0])
        if endpoint is None or endpoint["branch_id"] != branch.id:
            raise ApiError(404, f"endpoint {query['endpoint_id'][0]} not found on branch {branch.id}")
    elif not any(e["type"] == "read_write" for e in project.branch_endpoints(branch.id)):
        raise ApiError(404, f"branch {branch.id} has no read_write endpoint")
    role, database = query["role_name"][0], query["database_name"][0]
    branch.role(role)
    branch.database(database)
    password = branch.passwords[role]
    if password is None:
        raise ApiError(400, f"role {role} cannot log in")
    pooled = query.get("pooled", ["false"])[0] == "true"
    return 200, {"uri": postgres_uri(branch.compute, role, password, database, pooled=pooled)}


ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/projects/{project_id}/connection_uri"): connection_uri,
}
