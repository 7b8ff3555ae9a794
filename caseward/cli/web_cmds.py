"""``caseward web``: serve the developer portal and the webhooks (uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer


def web(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = (
        8080
    ),
) -> None:
    """Serve the developer portal (the personal links of every e-mail) and the webhooks.

    In production, run it behind a reverse proxy that terminates TLS, with
    CASEWARD_PORTAL__BASE_URL set to the public https URL (see docs/portal.md).
    """
    import logging

    import uvicorn

    from cases.core.settings import get_settings
    from caseward.web.app import create_app

    settings = get_settings()
    app = create_app(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(
        f"Caseward portal on http://{host}:{port} (e-mails link to {settings.portal.base_url}; "
        "Ctrl-C stops)",
        flush=True,
    )
    proxies = settings.portal.trusted_proxies
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=False,  # its lines would carry the links' tokens; caseward.web logs instead
        proxy_headers=bool(proxies),
        forwarded_allow_ips=",".join(proxies) or None,
        server_header=False,
        log_level="info",
    )


def register(app: typer.Typer) -> None:
    app.command("web")(web)
