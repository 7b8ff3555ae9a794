"""``caseward serve``: run Caseward's Prefect deployments on this machine (flows imported late)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option("--host", help="Address of the local Prefect server.")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port of the local Prefect server.")
    ] = 4200,
    web_host: Annotated[
        str, typer.Option("--web-host", help="Address of the developer portal.")
    ] = "127.0.0.1",
    web_port: Annotated[
        int,
        typer.Option(
            "--web-port", min=0, max=65535, help="Port of the developer portal (0: none)."
        ),
    ] = 8080,
    deployments: Annotated[
        Path | None,
        typer.Option(
            "--deployments",
            exists=True,
            dir_okay=False,
            help="A prefect.yaml to serve instead of Caseward's own (e.g. other schedules).",
        ),
    ] = None,
) -> None:
    """Start a local Prefect server (SQLite), the developer portal (`caseward web`) and
    serve every deployment of prefect.yaml.

    With PREFECT_API_URL set, serve the deployments against that server instead.
    """
    from caseward.serve import serve_all

    serve_all(host, port, deployments, web=(web_host, web_port) if web_port else None)


def demo(
    apps: Annotated[
        int, typer.Option("--apps", min=100, max=10_000_000, help="Apps on the demo platform.")
    ] = 600,
) -> None:
    """Play a month of enforcement on a generated platform in about a minute."""
    from caseward.demo import main

    main(apps=apps)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``demo`` to the root app."""
    app.command("serve")(serve)
    app.command("demo")(demo)
