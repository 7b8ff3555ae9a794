"""The web app: the developer portal and the providers' webhooks, in one FastAPI app.

:func:`create_app` keeps what handlers need on ``app.state``: ``settings``, ``sessions`` (a
sessionmaker on the configured database) and the portal's two rate limiters. No API docs
are served (their pages load scripts from a CDN, which the portal's CSP forbids).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException
from starlette.responses import Response

from cases.core.db import get_engine, session_factory
from cases.core.settings import Settings, get_settings
from caseward.web import portal, security, webhooks


async def _refusal(request: Request, exc: Exception) -> Response:
    """Portal refusals are pages; a webhook's stay the provider's JSON."""
    if request.url.path.startswith("/webhooks/"):
        assert isinstance(exc, HTTPException)
        return await http_exception_handler(request, exc)
    return portal.problem_page(request, exc)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The portal and the webhooks over ``settings`` (default: the configured ones)."""
    settings = settings or get_settings()
    app = FastAPI(title="Caseward", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.sessions = session_factory(get_engine(settings.database_url))
    app.state.link_limiter = security.RateLimiter(settings.portal.link_requests_per_minute)
    app.state.address_limiter = security.RateLimiter(settings.portal.address_requests_per_minute)
    app.middleware("http")(security.secure)
    app.add_exception_handler(HTTPException, _refusal)
    app.include_router(portal.router)
    app.include_router(webhooks.router)
    return app
