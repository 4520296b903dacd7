"""The in-process program runner: isolation, recorded options, secrets, and real dynamic providers."""

import pulumi
import pytest

from tests.support.echo_provider import Echo
from tests.support.pulumi_mocks import ProgramError, run_program


class Box(pulumi.ComponentResource):
    def __init__(self, name, size, opts=None):
        super().__init__("neon-stack:test:Box", name, None, opts)
        self.first = Echo(f"{name}-first", {"name": "first", "size": size}, pulumi.ResourceOptions(parent=self))
        self.second = Echo(
            f"{name}-second",
            {"name": "second", "size": self.first.size, "token": pulumi.Output.secret("s3cret")},
            pulumi.ResourceOptions(
                parent=self, protect=True, retain_on_delete=True, depends_on=[self.first],
                additional_secret_outputs=["greeting"],
            ),
        )
        self.register_outputs({"secondSize": self.second.size, "token": self.second.token})


def program(size=1):
    def declare():
        box = Box("box", size)
        pulumi.export("size", box.second.size)
        pulumi.export("token", box.second.token)
        pulumi.export("config", pulumi.Config().require("colour"))
        pulumi.log.warn("careful", resource=box.first)

    return declare


CONFIG = {"neon-stack:colour": "blue"}


def test_records_resources_options_outputs_and_logs():
    run = run_program(program(), config=CONFIG)
    first, second = run.one("test:Echo", "box-first"), run.one("test:Echo", "box-second")
    assert second.type == "pulumi-python:dynamic/test:Echo"
    assert second.options["protect"] and second.options["retain_on_delete"]
    assert second.options["depends_on"] == [first.urn]
    assert second.options["parent"] == run.one("neon-stack:test:Box", "box").urn
    assert second.options["additional_secret_outputs"] == ["greeting"]
    assert {"token", "__provider"} <= second.secret_inputs
    assert "token" in second.secret_outputs
    box = run.one("neon-stack:test:Box", "box")
    assert (box.outputs, box.secret_outputs) == ({"secondSize": 1, "token": "s3cret"}, {"token"})
    assert run.outputs == {"size": 1, "token": "s3cret", "config": "blue"}
    assert run.secret_outputs == {"token"}
    assert ("warning", "careful", first.urn) in run.logs
    assert run.operations == []  # providers not run


def test_runs_are_isolated():
    run_program(program(), config=CONFIG, stack="one")
    with pytest.raises(Exception, match="colour"):
        run_program(program(), config={}, stack="two")
    assert run_program(program(), config=CONFIG, stack="three").outputs["config"] == "blue"


def test_runs_dynamic_providers_for_real_across_runs():
    config = {"neon-stack:greeting": "hi"}
    first = run_program(program(), config=CONFIG, run_providers=True, provider_config=config)
    assert sorted(op for _, op in first.operations) == ["create", "create"]
    assert first.one("test:Echo", "box-first").outputs["greeting"] == "hi"
    assert "greeting" in first.one("test:Echo", "box-second").secret_outputs  # additional_secret_outputs
    assert "greeting" not in first.one("test:Echo", "box-first").secret_outputs

    again = run_program(program(), config=CONFIG, run_providers=True, provider_config=config, state=first.state)
    assert again.operations == []

    grown = run_program(program(2), config=CONFIG, run_providers=True, provider_config=config, state=again.state)
    assert sorted(op for _, op in grown.operations) == ["update", "update"]
    assert grown.outputs["size"] == 2

    failing = program(0)
    with pytest.raises(ProgramError, match="size must be positive"):
        run_program(failing, config=CONFIG, run_providers=True, provider_config=config)
