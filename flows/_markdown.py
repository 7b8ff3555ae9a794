"""Markdown a lead reads in the Prefect UI (artifacts, decision forms): ``templates/prefect/``,
installed as the package data ``flows.templates``.

The wording is in the templates; this module loads them and supplies the filters. Every
developer-controlled value goes through ``md`` (inline) or ``quote`` (a block): markdown and
HTML syntax is escaped and links are broken, so an app name cannot become a link, an image
fetched from the developer's server, or a heading.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from importlib.resources import files
from typing import Any

from jinja2 import Environment, StrictUndefined

from cases.core.clock import readable
from cases.email.render import ResourceLoader

_SYNTAX = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:])")


def md(value: Any) -> str:
    """Inline text: whitespace collapsed, markdown and HTML syntax escaped."""
    return _SYNTAX.sub(r"\\\1", " ".join(str(value).split()))


def quote(value: Any) -> str:
    """A block of text as a markdown quote, line breaks kept, syntax escaped."""
    lines = str(value).splitlines() or [""]
    return "\n".join("> " + _SYNTAX.sub(r"\\\1", " ".join(line.split())) for line in lines)


def when(value: datetime | None) -> str:
    """``Fri 4 Dec 2026 14:00 UTC``, or ``-`` for no time."""
    return "-" if value is None else readable(value)


def hours(value: float | None) -> str:
    """A duration given in hours as a lead scans it: ``40 min``, ``5.5 h``, ``3.2 d``."""
    if value is None:
        return "-"
    if value < 1:
        return f"{round(value * 60)} min"
    return f"{value:.1f} h" if value < 48 else f"{value / 24:.1f} d"


def words(value: Any) -> str:
    """``enforcement_due`` -> ``enforcement due``."""
    return str(value).replace("_", " ")


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=ResourceLoader(files("flows.templates")),
        undefined=StrictUndefined,
        autoescape=False,  # markdown, not HTML: values are escaped by the filters above
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(md=md, quote=quote, when=when, words=words, hours=hours)
    return env


def render(name: str, **context: Any) -> str:
    """Render ``templates/prefect/<name>.md.j2``."""
    return environment().get_template(f"{name}.md.j2").render(**context)
