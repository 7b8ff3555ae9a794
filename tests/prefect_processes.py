"""Caseward and Prefect in their own processes, driven as a user would: shared by the
end-to-end tests and ``docs/screenshots.py``.

A workspace is a folder with a Caseward database of cases past their deadlines, prepared
with the CLI in the recent past, and the environment every process of the scenario gets.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
CASEWARD = [sys.executable, "-m", "caseward"]
LEADS = ["lead-ann", "lead-bob"]
EVERY_MINUTE = {"cron": "* * * * *", "timezone": "Europe/Paris"}


class TimedOut(AssertionError):
    """What was awaited did not happen in time."""


def environment(folder: Path) -> dict[str, str]:
    """The environment of every process of a scenario in ``folder`` (its own Prefect home)."""
    (folder / "prefect").mkdir(exist_ok=True)
    return {k: v for k, v in os.environ.items() if not k.startswith(("CASEWARD_", "PREFECT_"))} | {
        "CASEWARD_DATABASE_URL": f"sqlite:///{folder / 'caseward.db'}",
        "CASEWARD_EMAIL__MAIL_DIR": str(folder / "mail"),
        "CASEWARD_LEADS": json.dumps(LEADS),
        "CASEWARD_SIMULATION": "true",
        "CASEWARD_DIR": str(ROOT),
        "PREFECT_HOME": str(folder / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PYTHONPATH": str(ROOT),
    }


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
            raise TimedOut(f"timed out after {timeout:.0f}s waiting for {what}")
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


def healthy(api: PrefectApi) -> bool:
    try:
        return api.http.get("/health").status_code == 200
    except httpx.HTTPError:
        return False


def show_log(log: Path) -> None:
    """Print the tail of a process's log (pytest shows it when the test failed)."""
    if log.exists():
        print(f"--- {log.name} (tail) ---\n" + log.read_text(errors="replace")[-6000:])
