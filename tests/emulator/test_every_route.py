"""Every operation the fake implements answers with success at least once, and the fake's own
responses pass validation against the document (the fixture fails the test otherwise)."""

from __future__ import annotations

import httpx

from tests.emulator.helpers import create_branch, create_project, wait
from tests.support.neon_fixtures import NeonApi


def test_every_implemented_route_succeeds(neon_api: NeonApi, client: httpx.Client) -> None:
    created = create_project(client, branch={"name": "main", "annotations": {"owner": "tests"}})
    p = created["project"]["id"]
    main, endpoint = created["branch"]["id"], created["endpoints"][0]["id"]

    def ok(method: str, path: str, **kwargs) -> dict:
        response = client.request(method, path, **kwargs)
        assert response.status_code in (200, 201), (method, path, response.text)
        body = response.json()
        wait(client, p, body.get("operations", []))
        return body

    ok("GET", "/projects")
    assert ok("GET", "/projects/shared", params={"limit": 10})["projects"] == []
    ok("GET", f"/projects/{p}")
    ok("PATCH", f"/projects/{p}", json={"project": {"name": "every-route"}})
    ok("GET", f"/projects/{p}/connection_uri", params={"role_name": "neondb_owner", "database_name": "neondb"})
    ok("GET", f"/projects/{p}/operations")
    assert ok("GET", f"/projects/{p}/branches/{main}")["annotation"]["value"] == {"owner": "tests"}
    assert main in ok("GET", f"/projects/{p}/branches")["annotations"]
    dev = create_branch(client, p, {"branch": {"name": "dev"}})["branch"]["id"]
    ok("PATCH", f"/projects/{p}/branches/{dev}", json={"branch": {"name": "dev2"}})
    ok("GET", f"/projects/{p}/branches/{dev}/endpoints")
    ep = ok("POST", f"/projects/{p}/endpoints", json={"endpoint": {"branch_id": dev, "type": "read_only"}})
    ok("GET", f"/projects/{p}/endpoints")
    ok("GET", f"/projects/{p}/endpoints/{endpoint}")
    ok("PATCH", f"/projects/{p}/endpoints/{endpoint}", json={"endpoint": {"suspend_timeout_seconds": 600}})
    ok("DELETE", f"/projects/{p}/endpoints/{ep['endpoint']['id']}")
    base = f"/projects/{p}/branches/{dev}"
    ok("POST", f"{base}/roles", json={"role": {"name": "reader", "no_login": True}})
    ok("GET", f"{base}/roles")
    ok("GET", f"{base}/roles/neondb_owner")
    ok("GET", f"{base}/roles/neondb_owner/reveal_password")
    ok("POST", f"{base}/roles/neondb_owner/reset_password")
    ok("POST", f"{base}/databases", json={"database": {"name": "extra", "owner_name": "neondb_owner"}})
    ok("GET", f"{base}/databases")
    ok("GET", f"{base}/databases/extra")
    ok("PATCH", f"{base}/databases/extra", json={"database": {"name": "extra2"}})
    ok("DELETE", f"{base}/databases/extra2")
    ok("DELETE", f"{base}/roles/reader")
    ok("POST", f"/projects/{p}/endpoints/{endpoint}/suspend")
    ok("POST", f"/projects/{p}/endpoints/{endpoint}/start")
    ok("POST", f"/projects/{p}/endpoints/{endpoint}/restart")
    ok("POST", f"{base}/restore", json={"source_branch_id": main})
    ok("POST", f"{base}/set_as_default")
    ok("POST", f"/projects/{p}/branches/{main}/set_as_default")
    ok("GET", "/users/me")
    ok("GET", "/users/me/organizations")
    ok("GET", "/auth")
    ok("DELETE", f"/projects/{p}/branches/{dev}")
    ok("DELETE", f"/projects/{p}")

    routes = set(neon_api.fake.routes())
    succeeded = {(method, template) for method, template, status in neon_api.calls if status in (200, 201)}
    assert routes - succeeded == set()
