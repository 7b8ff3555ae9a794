"""prefect.yaml: every deployment is described, scheduled with a time zone, and importable."""

from __future__ import annotations

import pytest
from prefect import Flow

from flows.deployments import load_flow, runner_deployment, specs

SCHEDULED = {"detect", "advance-cases", "deliver-email", "report", "submit-statements"}
SPECS = specs()


def test_every_flow_is_deployed_once() -> None:
    names = [s["name"] for s in SPECS]
    assert sorted(names) == sorted(
        SCHEDULED | {"approve-enforcement", "review-appeal", "extension-request"}
    ), "one deployment per flow"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s["name"])
def test_deployment_is_complete_and_importable(spec: dict[str, object]) -> None:
    assert spec["description"] and spec["work_pool"] == {
        "name": "caseward",
        "work_queue_name": "default",
    }
    flow = load_flow(str(spec["entrypoint"]))
    assert isinstance(flow, Flow) and flow.name == spec["name"]
    deployment = runner_deployment(spec)  # parameters must match the flow's signature
    assert set(deployment.parameters) <= set(flow.parameters.properties)
    if spec["name"] in SCHEDULED:
        assert [s.schedule.timezone for s in deployment.schedules] == ["Europe/Paris"]
    else:
        assert len(deployment.triggers) == 1
