"""prefect.yaml as the one list of deployments: read it, import entrypoints, serve them.

``prefect deploy --all`` reads the file for a work pool; ``caseward serve`` turns the same
entries into runner deployments served from one local process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from prefect import Flow
from prefect.deployments.runner import RunnerDeployment
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from prefect.flows import load_flow_from_entrypoint
from prefect.schedules import Cron

ROOT = Path(__file__).resolve().parent.parent
PREFECT_YAML = ROOT / "prefect.yaml"


def specs(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    """The ``deployments`` entries of ``prefect.yaml`` (anchors resolved)."""
    with path.open(encoding="utf-8") as handle:
        return list(yaml.safe_load(handle)["deployments"])


def load_flow(entrypoint: str, root: Path = ROOT) -> Flow[..., Any]:
    """The flow an entrypoint (``flows/x.py:fn``) names, relative to the project root."""
    file, _, name = entrypoint.partition(":")
    return load_flow_from_entrypoint(f"{root / file}:{name}")


def runner_deployment(spec: dict[str, Any], root: Path = ROOT) -> RunnerDeployment:
    """One ``prefect.yaml`` entry as a deployment ``prefect.serve`` can run."""
    flow = load_flow(spec["entrypoint"], root)
    deployment = flow.to_deployment(
        name=spec["name"],
        description=spec.get("description"),
        tags=spec.get("tags"),
        parameters=spec.get("parameters") or {},
        schedules=[Cron(s["cron"], timezone=s.get("timezone")) for s in spec.get("schedules", [])],
        triggers=[DeploymentEventTrigger(**t) for t in spec.get("triggers", [])],
    )
    assert isinstance(deployment, RunnerDeployment)  # to_deployment is sync outside a loop
    return deployment


def runner_deployments(path: Path = PREFECT_YAML) -> list[RunnerDeployment]:
    return [runner_deployment(spec, path.parent) for spec in specs(path)]
