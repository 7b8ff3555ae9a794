"""prefect.yaml as the one list of deployments: read it, import entrypoints, serve them.

``prefect deploy --all`` reads the file for a work pool; ``caseward serve`` turns the same
entries into runner deployments served from one local process.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.deployments.runner import RunnerDeployment
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.flows import load_flow_from_entrypoint
from prefect.schedules import Cron

ROOT = Path(__file__).resolve().parent.parent


def _prefect_yaml() -> Path:
    """The checkout's prefect.yaml; in an installed wheel, the copy packaged with ``flows``."""
    checkout = ROOT / "prefect.yaml"
    return checkout if checkout.is_file() else Path(__file__).resolve().parent / "prefect.yaml"


PREFECT_YAML = _prefect_yaml()


def specs(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """The ``deployments`` entries of ``prefect.yaml`` (anchors resolved)."""
    with path.open(encoding="utf-8") as handle:
        return list(yaml.safe_load(handle)["deployments"])


def absolute(entrypoint: str, root: Path = ROOT) -> str:
    """An entrypoint (``flows/x.py:fn``, relative to the project root) as an absolute one."""
    file, _, name = entrypoint.partition(":")
    return f"{root / file}:{name}"


def load_flow(entrypoint: str, root: Path = ROOT) -> Flow[..., Any]:
    """The flow an entrypoint (``flows/x.py:fn``) names, relative to the project root."""
    return load_flow_from_entrypoint(absolute(entrypoint, root))


def runner_deployment(spec: dict[str, Any], root: Path = ROOT) -> RunnerDeployment:
    """One ``prefect.yaml`` entry as a deployment ``prefect.serve`` can run.

    Built from the entrypoint itself, as ``prefect deploy`` does, not from the flow object:
    a flow made by a factory (the decision flows) is defined in another module than the one
    that names it, and runs are loaded by the entrypoint.
    """
    return RunnerDeployment.from_entrypoint(
        entrypoint=absolute(spec["entrypoint"], root),
        name=spec["name"],
        description=spec.get("description"),
        tags=spec.get("tags"),
        parameters=spec.get("parameters") or {},
        schedules=[Cron(s["cron"], timezone=s.get("timezone")) for s in spec.get("schedules", [])],
        triggers=[DeploymentEventTrigger(**t) for t in spec.get("triggers", [])],
    )


def runner_deployments(path: Path = PREFECT_YAML) -> list[RunnerDeployment]:
    """The deployments of ``path``; entrypoints name Caseward's own flows, so they are found
    under the project root wherever the file is (a copy with other schedules works too)."""
    return [runner_deployment(spec, ROOT) for spec in specs(path)]


def next_scheduled_run(deployment: str) -> datetime | None:
    """When the server next runs ``deployment`` on its schedule; None if nothing is scheduled."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
            ),
            sort=FlowRunSort.EXPECTED_START_TIME_ASC,
            limit=1,
        )
    return runs[0].expected_start_time if runs else None
