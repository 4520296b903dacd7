"""The real dynamic-provider host, driven over gRPC: the harness every provider test relies on."""

import pytest
from pulumi.output import Unknown

from tests.support.echo_provider import EchoProvider
from tests.support.provider_host import ProviderHostError, start_provider_host

pytestmark = pytest.mark.host  # every test talks to a provider-host process


@pytest.fixture(scope="module")
def host():
    with start_provider_host() as running:
        running.configure({"neon-stack:greeting": "hello"})
        yield running


def test_lifecycle_through_the_host(host):
    provider = EchoProvider()
    checked = host.check(provider, {}, {"name": "a", "size": 1})
    assert checked.failures == []
    assert checked.inputs == {"name": "a", "size": 1, "unknownInputs": []}

    id_, outs = host.create(provider, {"name": "a", "size": 1})
    assert (id_, outs["greeting"]) == ("echo-a", "hello")

    assert host.diff(provider, id_, outs, {"name": "a", "size": 1}).changes is False
    in_place = host.diff(provider, id_, outs, {"name": "a", "size": 2})
    assert (in_place.changes, in_place.replaces) == (True, [])
    assert host.diff(provider, id_, outs, {"name": "b", "size": 1}).replaces == ["name"]

    updated = host.update(provider, id_, outs, {"name": "a", "size": 2})
    assert (updated["size"], updated["previousSize"], updated["greeting"]) == (2, 1, "hello")

    read_id, read_outs, read_inputs = host.read(provider, id_, updated)
    assert (read_id, read_outs["size"], read_inputs) == (id_, 2, {"name": "a", "size": 2})
    host.delete(provider, id_, updated)


def test_unknowns_reach_check_as_unknown(host):
    checked = host.check(EchoProvider(), {}, {"name": "a", "size": Unknown()})
    assert checked.inputs["unknownInputs"] == ["size"]


def test_failures_and_errors_come_back(host):
    assert host.check(EchoProvider(), {}, {"name": "a", "size": 0}).failures == [("size", "size must be positive")]
    with pytest.raises(ProviderHostError, match="refusing to delete echo-x"):
        host.delete(EchoProvider(), "echo-x", {"name": "undeletable"})


def test_host_imports_providers_from_the_project_root():
    """A provider pickled by reference must be importable by module name in the host process."""
    with start_provider_host() as running:
        running.configure({})
        assert running.create(EchoProvider(), {"name": "z", "size": 3})[0] == "echo-z"
        assert "Traceback" not in running.output()
