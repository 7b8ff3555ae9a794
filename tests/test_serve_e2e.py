"""End to end through a real Prefect server: schedules run, decision triggers start forms.

Two ways a lead runs Caseward's deployments are exercised as a user would, in their own
processes: ``caseward serve`` (a local server and every deployment served from one
process), and ``prefect deploy`` to a ``process`` work pool with a worker. A database with
cases past their deadline is prepared with the CLI; the test then waits for

* scheduled runs of deliver-email and advance-cases to complete,
* an escalation that needs approval to start an approve-enforcement run, with an integer
  ``case_id``, that waits for a lead's form,
* an appeal to start a review-appeal run that waits too,

and answers the approval form the way the UI does: a reviewer the lifecycle would refuse is
refused by the server and the run keeps waiting; a lead's answer completes the run and is
recorded on the case. The prefect.yaml served is Caseward's own with the schedules of
advance-cases and deliver-email every minute (and no detect or report schedules).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.prefect_processes import (
    CASEWARD,
    LEADS,
    ROOT,
    PrefectApi,
    cli,
    environment,
    free_port,
    healthy,
    prefect_yaml_every_minute,
    prepare_cases,
    show_log,
    start,
    stop,
    wait_for,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of every process of the scenario, in the test's own folder."""
    yield environment(tmp_path)


def check_lifecycle_through_prefect(
    api: PrefectApi, env: dict[str, str], cwd: Path, waiting: int, appealed: int
) -> None:
    """What both variants must show: schedules, triggers, and a form a lead answers."""
    for flow in ("deliver-email", "advance-cases"):
        wait_for(f"a completed scheduled {flow} run", lambda f=flow: api.completed(f), 240)
    approval = wait_for(
        f"an approve-enforcement run waiting on case {waiting}",
        lambda: api.waiting("approve-enforcement", waiting),
        240,
    )
    assert approval["parameters"]["case_id"] == waiting  # an integer, not "15"
    wait_for(
        f"a review-appeal run waiting on case {appealed}",
        lambda: api.waiting("review-appeal", appealed),
        240,
    )

    refused = api.resume(
        approval["id"], {"decision": "approve", "reason": "ban fits", "reviewer": "mallory"}
    )
    assert refused["status"] == "REJECT" and "mallory" in json.dumps(refused["details"])
    assert api.state(approval["id"])["type"] == "PAUSED"  # still waiting for a lead

    accepted = api.resume(
        approval["id"], {"decision": "approve", "reason": "ban fits", "reviewer": LEADS[1]}
    )
    assert accepted["status"] == "ACCEPT"
    final = wait_for(
        "the approval run to complete",
        lambda: (s := api.state(approval["id"]))["type"] == "COMPLETED" and s,
        180,
    )
    assert final["name"] == "Approved"
    shown = json.loads(cli(env, cwd, "cases", "show", str(waiting), "--json"))
    assert shown["enforcement"]["approved_by"] == LEADS[1]


def test_caseward_serve_runs_schedules_and_decision_triggers(
    workspace: dict[str, str], tmp_path: Path
) -> None:
    waiting, appealed = prepare_cases(workspace, tmp_path)
    port, web_port = free_port(), free_port()
    deployments = prefect_yaml_every_minute(tmp_path / "prefect.yaml")
    served = start(
        [
            *CASEWARD,
            "serve",
            "--port",
            str(port),
            "--web-port",
            str(web_port),
            "--deployments",
            str(deployments),
        ],
        workspace,
        tmp_path,
        tmp_path / "serve.log",
    )
    try:
        api = PrefectApi(f"http://127.0.0.1:{port}/api")
        wait_for("the Prefect server", lambda: healthy(api), 120, every=1)
        ui = httpx.get(f"http://127.0.0.1:{port}/ui-settings", timeout=10).json()
        assert ui["api_url"] == f"http://127.0.0.1:{port}/api"  # not the default 4200
        portal = httpx.get(f"http://127.0.0.1:{web_port}/healthz", timeout=10)
        assert portal.text == "ok\n"  # the developer portal runs beside the deployments
        check_lifecycle_through_prefect(api, workspace, tmp_path, waiting, appealed)
    finally:
        stop(served)
        show_log(tmp_path / "serve.log")


def test_prefect_deploy_to_a_process_pool_with_a_worker(
    workspace: dict[str, str], tmp_path: Path
) -> None:
    waiting, appealed = prepare_cases(workspace, tmp_path)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = workspace | {"PREFECT_API_URL": api_url}
    prefect = [sys.executable, "-m", "prefect"]
    server_env = workspace | {
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_API_URL": api_url,
    }
    server = start(
        [*prefect, "server", "start", "--port", str(port)],
        server_env,
        tmp_path,
        tmp_path / "server.log",
    )
    worker = None
    try:
        api = PrefectApi(api_url)
        wait_for("the Prefect server", lambda: healthy(api), 120, every=1)
        deployments = prefect_yaml_every_minute(tmp_path / "prefect.yaml")
        for cmd in (
            [*prefect, "work-pool", "create", "caseward", "--type", "process"],
            [*prefect, "--no-prompt", "deploy", "--all", "--prefect-file", str(deployments)],
        ):
            done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, timeout=180)
            assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
        worker = start(
            [*prefect, "worker", "start", "--pool", "caseward"], env, tmp_path, tmp_path / "w.log"
        )
        check_lifecycle_through_prefect(api, env, tmp_path, waiting, appealed)
    finally:
        if worker is not None:
            stop(worker)
        stop(server)
        show_log(tmp_path / "w.log")
