"""The portal's pages: one autoescaping Jinja environment over ``templates/web/``.

Every word a developer reads on the portal is in those templates; handlers pass plain data.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, Response

from cases.email.render import ResourceLoader, format_date, format_instant, plural


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=ResourceLoader(files("caseward.web.templates")),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["when"] = format_instant
    env.filters["date"] = format_date
    env.filters["plural"] = plural
    return env


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """The page ``templates/web/<name>.html.j2`` rendered with ``context``."""
    html = environment().get_template(f"{name}.html.j2").render(**context)
    return HTMLResponse(html, status_code=status)


def stylesheet() -> Response:
    """The one stylesheet (a file of this origin: the CSP allows nothing else)."""
    css = files("caseward.web.templates").joinpath("portal.css").read_text(encoding="utf-8")
    return Response(css, media_type="text/css")
