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
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CASEWARD = [sys.executable, "-m", "caseward"]
LEADS = ["lead-ann", "lead-bob"]
EVERY_MINUTE = {"cron": "* * * * *", "timezone": "Europe/Paris"}

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float, every: float = 2.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


class RetryWhileBusy(httpx.HTTPTransport):
    """A local server on SQLite answers 503 while its database is locked by a busy moment
    (two servers and their runs share these 2 cores): try again, as a person would."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for _ in range(9):
            response = super().handle_request(request)
            if response.status_code != 503:
                return response
            response.close()
            time.sleep(1)
        return super().handle_request(request)


class PrefectApi:
    """The few REST calls the test needs, made as the UI makes them."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=30, transport=RetryWhileBusy())

    def flow_names(self) -> dict[str, str]:
        flows = self.http.post("/flows/filter", json={"limit": 200}).json()
        return {f["id"]: f["name"] for f in flows}

    def runs(self, flow: str) -> list[dict[str, Any]]:
        names = self.flow_names()
        runs = self.http.post("/flow_runs/filter", json={"limit": 200}).json()
        return [r for r in runs if names.get(r["flow_id"]) == flow]

    def completed(self, flow: str) -> list[dict[str, Any]]:
        return [r for r in self.runs(flow) if (r.get("state") or {}).get("type") == "COMPLETED"]

    def waiting(self, flow: str, case_id: int) -> dict[str, Any] | None:
        """A run of ``flow`` about ``case_id`` paused on its form (the schema is saved)."""
        for run in self.runs(flow):
            state = run.get("state") or {}
            keyset = (state.get("state_details") or {}).get("run_input_keyset")
            if run["parameters"].get("case_id") == case_id and state.get("type") == "PAUSED":
                saved = keyset and self.http.get(f"/flow_runs/{run['id']}/input/{keyset['schema']}")
                if saved is not None and saved.status_code == 200:
                    return run
        return None

    def resume(self, run_id: str, run_input: dict[str, str]) -> dict[str, Any]:
        answer = self.http.post(f"/flow_runs/{run_id}/resume", json={"run_input": run_input})
        answer.raise_for_status()
        return dict(answer.json())

    def state(self, run_id: str) -> dict[str, Any]:
        return dict(self.http.get(f"/flow_runs/{run_id}").json()["state"])


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A folder, a Caseward database with due cases, and the environment of every process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASEWARD_", "PREFECT_"))} | {
        "CASEWARD_DATABASE_URL": f"sqlite:///{tmp_path / 'caseward.db'}",
        "CASEWARD_EMAIL__MAIL_DIR": str(tmp_path / "mail"),
        "CASEWARD_LEADS": json.dumps(LEADS),
        "CASEWARD_SIMULATION": "true",  # the cases are prepared at simulated times
        "CASEWARD_DIR": str(ROOT),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PYTHONPATH": str(ROOT),
    }
    (tmp_path / "prefect").mkdir()
    yield env


def cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [*CASEWARD, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"caseward {' '.join(args)}: {done.stderr}"
    return done.stdout


def prepare_cases(env: dict[str, str], cwd: Path) -> tuple[int, int]:
    """Drive a generated platform through its deadlines with the CLI, in the recent past:
    returns a case waiting for a ban approval and a case whose enforcement was appealed."""
    start = datetime.now(UTC) - timedelta(days=60)
    cli(env, cwd, "init")
    cli(env, cwd, "demo-data", str(cwd / "snapshot"), "--apps", "300", "--seed", "3")
    cli(env, cwd, "--now", start.isoformat(), "detect", "--data", str(cwd / "snapshot"))
    listed = json.loads(cli(env, cwd, "cases", "list", "--json"))
    for case in listed:
        at = start.isoformat()
        cli(env, cwd, "--now", at, "--actor", LEADS[0], "cases", "confirm", str(case["id"]),
            "--reason", "checked")  # fmt: skip
    for offset in (1, 16, 48):  # outreach, change request, deadline passed and enforcement
        cli(env, cwd, "--now", (start + timedelta(days=offset)).isoformat(), "advance")
    cases = json.loads(cli(env, cwd, "cases", "list", "--json"))
    waiting = next(c["id"] for c in cases if c["status"] == "enforcement_due")
    enforced = next(c["id"] for c in cases if c["status"] == "enforced")
    cli(env, cwd, "--actor", "dev", "appeal", "submit", str(enforced), "--statement", "fixed")
    return waiting, enforced


def prefect_yaml_every_minute(path: Path) -> Path:
    """Caseward's prefect.yaml with advance-cases and deliver-email every minute and no
    detect or report schedule (their inputs are not part of this test)."""
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    for deployment in spec["deployments"]:
        if deployment["name"] in {"advance-cases", "deliver-email"}:
            deployment["schedules"] = [EVERY_MINUTE]
        elif deployment.get("schedules"):
            deployment["schedules"] = []
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process group started by the test (the server, the runner and their runs)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def start(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


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
    port = free_port()
    deployments = prefect_yaml_every_minute(tmp_path / "prefect.yaml")
    served = start(
        [*CASEWARD, "serve", "--port", str(port), "--deployments", str(deployments)],
        workspace,
        tmp_path,
        tmp_path / "serve.log",
    )
    try:
        api = PrefectApi(f"http://127.0.0.1:{port}/api")
        wait_for("the Prefect server", lambda: _healthy(api), 120, every=1)
        ui = httpx.get(f"http://127.0.0.1:{port}/ui-settings", timeout=10).json()
        assert ui["api_url"] == f"http://127.0.0.1:{port}/api"  # not the default 4200
        check_lifecycle_through_prefect(api, workspace, tmp_path, waiting, appealed)
    finally:
        stop(served)
        _show_log_on_failure(tmp_path / "serve.log")


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
        wait_for("the Prefect server", lambda: _healthy(api), 120, every=1)
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
        _show_log_on_failure(tmp_path / "w.log")


def _healthy(api: PrefectApi) -> bool:
    try:
        return api.http.get("/health").status_code == 200
    except httpx.HTTPError:
        return False


def _show_log_on_failure(log: Path) -> None:
    """Print the tail of a process's log (pytest shows it when the test failed)."""
    if log.exists():
        print(f"--- {log.name} (tail) ---\n" + log.read_text(errors="replace")[-6000:])
