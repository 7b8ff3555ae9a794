"""``caseward serve``: a local Prefect server on SQLite, the developer portal and every
deployment, on one machine.

With ``PREFECT_API_URL`` already set (a shared Prefect server), only the deployments are
served. The server's database lives under ``PREFECT_HOME`` (default ``.caseward/prefect``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

DEFAULT_HOME = Path(".caseward") / "prefect"


def local_environment() -> dict[str, str]:
    """The environment of a local Prefect: its own home, no analytics, no telemetry."""
    env = dict(os.environ)
    env.setdefault("PREFECT_HOME", str(DEFAULT_HOME.resolve()))
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env["DO_NOT_TRACK"] = "1"
    return env


def server_environment(host: str, port: int) -> dict[str, str]:
    """The local server's environment: its UI calls the API on this host and port (the UI
    otherwise assumes port 4200, whatever ``--port`` says)."""
    return local_environment() | {
        "PREFECT_SERVER_API_HOST": host,
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_API_URL": f"http://{host}:{port}/api",
    }


def answering(
    process: subprocess.Popen[bytes], url: str, what: str, timeout: float
) -> subprocess.Popen[bytes]:
    """``process`` once ``url`` answers 200; an error naming ``what`` if it exits or stays
    silent for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise RuntimeError(f"{what} did not answer on {url} within {timeout:.0f}s")


def start_server(host: str, port: int, timeout: float = 90) -> subprocess.Popen[bytes]:
    """Start ``prefect server start`` and wait until its API answers."""
    env = server_environment(host, port)
    Path(env["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    log = (Path(env["PREFECT_HOME"]) / "server.log").open("ab")
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{host}:{port}/api/health"
    return answering(server, url, f"the Prefect server (see {log.name})", timeout)


def start_web(host: str, port: int, timeout: float = 60) -> subprocess.Popen[bytes]:
    """Start ``caseward web`` in a process of its own and wait until it answers."""
    web = subprocess.Popen(
        [sys.executable, "-m", "caseward", "web", "--host", host, "--port", str(port)]
    )
    what = f"the developer portal (is port {port} free?)"
    return answering(web, f"http://{host}:{port}/healthz", what, timeout)


def serve_all(
    host: str,
    port: int,
    deployments: Path | None = None,
    web: tuple[str, int] | None = None,
) -> None:
    """Serve every deployment of ``deployments`` (default: Caseward's prefect.yaml),
    starting a local server unless ``PREFECT_API_URL`` names one, and the developer portal
    on ``web`` (host, port) unless None.

    Prefect reads its settings when first imported: it is imported only once the
    environment points at the server.
    """
    portal = start_web(*web) if web is not None else None
    server = None
    try:
        if not os.environ.get("PREFECT_API_URL"):
            print(f"starting a local Prefect server (SQLite) on http://{host}:{port} ...")
            server = start_server(host, port)
            os.environ.update(local_environment())
            os.environ["PREFECT_API_URL"] = f"http://{host}:{port}/api"
        ui = os.environ["PREFECT_API_URL"].removesuffix("/api")
        os.environ.setdefault("PREFECT_UI_URL", ui)  # links to runs and case artifacts
        if web is not None:
            print(f"Developer portal: http://{web[0]}:{web[1]}", flush=True)
        print(f"Prefect UI: {ui}  (deployments, runs, artifacts; Ctrl-C stops)", flush=True)
        from prefect import serve

        from flows.deployments import PREFECT_YAML, runner_deployments

        serve(*runner_deployments(deployments or PREFECT_YAML))
    finally:
        for process in (server, portal):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
