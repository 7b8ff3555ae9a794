"""The developer portal: a case page per personal link, and its four forms.

``GET /case/<token>`` shows the developer's view of the case; ``POST /case/<token>/<action>``
(acknowledge, compliance, extension, appeal) takes the action through the lifecycle as
``developer:<id>`` and answers with a confirmation page. An unknown, tampered or expired link,
or one whose developer is no longer part of the case, gets the same 404 page. Time is
business time: ``CASEWARD_NOW`` in simulation, else the real clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cases.core.clock import utcnow
from cases.core.errors import CasewardError
from cases.core.settings import Settings
from cases.email.context import _web_link
from cases.portal import links
from cases.portal.actions import MAX_STATEMENT, Action, Outcome, submit
from cases.portal.view import open_link, portal_view
from caseward.web import security
from caseward.web.pages import page, stylesheet

router = APIRouter()
MAX_BODY = 64 * 1024  # a form holds a statement of 5,000 characters and a URL
# an acknowledgement may come without words; the event still gives a reason
ACKNOWLEDGED = "acknowledged on the case page"


class Problem(HTTPException):
    """A refusal shown as a page of ``templates/web/problem.html.j2`` (``kind`` picks its
    words)."""

    def __init__(self, status: int, kind: str, link_token: str | None = None) -> None:
        super().__init__(status_code=status, detail=kind)
        self.kind, self.link_token = kind, link_token


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def business_now(settings: Settings) -> datetime:
    """The one clock: the simulated time when set (simulation only), else the real one."""
    return settings.now or utcnow()


def _keys(settings: Settings) -> list[bytes]:
    return links.keys(settings.portal, simulation=settings.simulation)


def claims_of(request: Request, token: str) -> links.LinkClaims:
    """The link's claims after the rate limits; a 404 for any link that is not valid now."""
    address = request.client.host if request.client else "unknown"
    if not request.app.state.address_limiter.allow(address):
        raise Problem(429, "too_many")
    settings = settings_of(request)
    claims = links.verify(token, _keys(settings), now=business_now(settings))
    if claims is None:
        raise Problem(404, "not_found")
    if not request.app.state.link_limiter.allow(security.link_key(token)):
        raise Problem(429, "too_many")
    request.state.case_id = claims.case_id
    return claims


@dataclass
class Form:
    """What a developer typed, kept to show again when it is refused."""

    action: Action | None = None
    statement: str = ""
    url: str = ""
    error: str | None = None


def _case_page(
    request: Request, token: str, claims: links.LinkClaims, form: Form, status: int = 200
) -> Response:
    settings = settings_of(request)
    nonce = request.cookies.get(security.CSRF_COOKIE)
    fresh = not security.valid_nonce(nonce)
    if fresh:
        nonce = security.new_nonce()
    assert nonce is not None
    with request.app.state.sessions() as session:
        opened = open_link(session, claims)
        if opened is None:
            raise Problem(404, "not_found")
        case, developer = opened
        view = portal_view(
            session, case=case, developer=developer, now=business_now(settings), settings=settings
        )
    response = page(
        "case",
        status,
        v=view,
        base=f"/case/{token}",
        csrf=security.csrf_token(_keys(settings)[0], nonce, token),
        form=form,
        max_statement=MAX_STATEMENT,
    )
    if fresh:
        response.set_cookie(
            security.CSRF_COOKIE,
            nonce,
            path="/case/",
            httponly=True,
            samesite="strict",
            secure=settings.portal.base_url.startswith("https:"),
        )
    return response


@router.get("/case/{token}")
def case_page(token: str, request: Request) -> Response:
    claims = claims_of(request, token)
    return _case_page(request, token, claims, Form())


def _field(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name) or [""]
    return values[0]


def _check(form: Form) -> Form:
    """``form`` with the first problem of what was typed, if any."""
    statement = form.statement
    if len(statement) > MAX_STATEMENT:
        form.error = "too_long"
    elif not statement and form.action is not Action.ACKNOWLEDGE:
        form.error = "empty"
    elif form.url and _web_link(form.url) is None:
        form.error = "bad_url"
    return form


def _record(request: Request, claims: links.LinkClaims, form: Form) -> Outcome:
    """Take the action in one unit of work; a refusal by the lifecycle changes nothing."""
    settings = settings_of(request)
    assert form.action is not None
    try:
        with request.app.state.sessions.begin() as session:
            opened = open_link(session, claims)
            if opened is None:
                raise Problem(404, "not_found")
            _, developer = opened
            return submit(
                session,
                case_id=claims.case_id,
                developer_id=developer.id,
                action=form.action,
                statement=form.statement or ACKNOWLEDGED,
                url=form.url or None,
                now=business_now(settings),
            )
    except CasewardError:  # a guard the page did not foresee (a race with a lead)
        return Outcome.CLOSED


@router.post("/case/{token}/{action}")
async def act(token: str, action: str, request: Request) -> Response:
    claims = claims_of(request, token)
    try:
        chosen = Action(action)
    except ValueError:
        raise Problem(404, "not_found") from None
    body = await request.body()
    if len(body) > MAX_BODY:
        raise Problem(413, "too_large", token)
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=10)
    settings = settings_of(request)
    nonce = request.cookies.get(security.CSRF_COOKIE)
    if not security.csrf_valid(_keys(settings), nonce, token, _field(fields, "csrf_token")):
        raise Problem(403, "csrf", token)
    form = _check(
        Form(
            action=chosen,
            statement=_field(fields, "statement").replace("\r\n", "\n").strip(),
            url=_field(fields, "url").strip(),
        )
    )
    if form.error is not None:
        return await run_in_threadpool(_case_page, request, token, claims, form, 400)
    outcome = await run_in_threadpool(_record, request, claims, form)
    status = 409 if outcome is Outcome.CLOSED else 200
    return page("done", status, action=chosen.value, outcome=outcome.value, base=f"/case/{token}")


@router.get("/")
def home() -> Response:
    return page("home")


@router.get("/healthz")
def health() -> Response:
    return Response("ok\n", media_type="text/plain")


@router.get("/static/portal.css")
def css() -> Response:
    return stylesheet()


def problem_page(request: Request, exc: Any) -> Response:
    """Every refusal of the portal as a page; the same 404 for every link that is not valid."""
    status = int(getattr(exc, "status_code", 500))
    kind = getattr(exc, "kind", None) or {404: "not_found", 405: "method"}.get(status, "error")
    token = getattr(exc, "link_token", None)
    response = page("problem", status, kind=kind, base=f"/case/{token}" if token else None)
    response.headers.update(getattr(exc, "headers", None) or {})  # Allow, on a 405
    if status == 429:
        response.headers["Retry-After"] = "60"
    return response
