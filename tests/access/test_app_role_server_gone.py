"""An app role whose server is gone (its branch expired): delete forgets it, refresh does not."""

from __future__ import annotations

import pytest

from components.access.app_role import AppRoleError, AppRoleProvider
from components.uri import postgres_uri
from neon_emulator.servers import free_port


def test_delete_succeeds_when_nothing_listens_but_refresh_fails() -> None:
    url = postgres_uri("chatkit_owner", "pw-not-shown", f"127.0.0.1:{free_port()}", "chatkit")
    props = {"admin_url": url, "role_name": "chatkit_app"}
    assert AppRoleProvider().delete("chatkit_app", props) is None
    with pytest.raises(AppRoleError, match="Connection refused") as error:
        AppRoleProvider().read("chatkit_app", props)
    assert "pw-not-shown" not in str(error.value)
