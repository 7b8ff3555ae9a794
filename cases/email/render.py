"""One Jinja environment for every e-mail: autoescaped HTML, strict undefined, shared layout.

Wording lives in ``templates/email/`` (templates, partials and ``catalog.toml``), installed as
the package data ``cases.email.templates`` and read through :mod:`importlib.resources`, so an
installed Caseward finds them from any folder. This module only loads them, formats values
and guarantees that a subject is a single safe header line.
"""

from __future__ import annotations

import re
import textwrap
import tomllib
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    BaseLoader,
    Environment,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    meta,
    nodes,
    select_autoescape,
)
from jinja2.runtime import Context
from jinja2.utils import missing

from cases.core.enums import EmailTemplate
from cases.core.inert import BIDI

# any character that could end or fold a header line, the other C0/C1 controls, bidi controls
_UNSAFE_HEADER_CHARS = re.compile(rf"[\x00-\x1f\x7f-\x9f{BIDI}]+")
_LEFTOVER_SYNTAX = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")


class RenderError(Exception):
    """A template could not be rendered (a missing variable, a syntax error)."""


@dataclass(frozen=True)
class RenderedEmail:
    """The three parts of one e-mail, ready to store."""

    subject: str
    text: str
    html: str


def packaged_templates() -> Traversable:
    """The templates installed with Caseward (``templates/email`` of the checkout)."""
    return files("cases.email.templates")


class ResourceLoader(BaseLoader):
    """Loads templates from a folder given as a :class:`Traversable`: package data (which may
    live in a zip) or a plain :class:`~pathlib.Path` (``email.template_dir``)."""

    def __init__(self, root: Traversable) -> None:
        self.root = root

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        resource = self.root.joinpath(*template.split("/"))
        if not resource.is_file():
            raise TemplateNotFound(template)
        return resource.read_text(encoding="utf-8"), str(resource), lambda: True


def header_safe(value: str, *, limit: int = 250) -> str:
    """One header line: controls (CR, LF, tab...) become spaces, runs collapse, long text is cut."""
    line = " ".join(_UNSAFE_HEADER_CHARS.sub(" ", value).split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


@lru_cache(maxsize=4096)
def format_instant(value: datetime, tz: str) -> str:
    """A date and time in the zone ``tz``, the zone named: ``Friday 4 December 2026, 14:00 UTC``
    or ``Friday 4 December 2026, 15:00 CET (UTC+01:00)``."""
    local = value.astimezone(ZoneInfo(tz))
    text = f"{local:%A} {local.day} {local:%B %Y, %H:%M} {local.tzname()}"
    offset = local.utcoffset()
    if local.tzname() in {"UTC", "GMT"} and not offset:
        return text
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes >= 0 else "-"
    return f"{text} (UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d})"


@lru_cache(maxsize=4096)
def format_date(value: datetime, tz: str) -> str:
    """Only the calendar date in ``tz``, e.g. ``4 December 2026``."""
    local = value.astimezone(ZoneInfo(tz))
    return f"{local.day} {local:%B %Y}"


@lru_cache(maxsize=4096)
def wordwrap(text: str, width: int = 79) -> str:
    """Jinja's ``wordwrap`` (paragraph lines kept), cached: policy passages and change lists
    repeat across thousands of e-mails."""
    return "\n".join(
        textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False) or line
        for line in str(text).splitlines()
    )


# the longest line of a text part (RFC 5322 asks for 78; developer text may run longer)
TEXT_WIDTH = 100
EMPTY_CELL = "\u2013"  # an en dash
# the longest text in a table cell; the full text stands elsewhere in the e-mail
CELL_WIDTH = 40


@lru_cache(maxsize=4096)
def bullet(text: str, marker: str = "  - ", width: int = 78) -> str:
    """``text`` as one list item: wrapped, its lines hung under the first (cached: the
    changes asked and the apps repeat across thousands of e-mails)."""
    return textwrap.fill(
        " ".join(str(text).split()),
        width,
        initial_indent=marker,
        subsequent_indent=" " * len(marker),
        break_long_words=False,
        break_on_hyphens=False,
    )


def lower_first(text: str) -> str:
    """A title inside a sentence: ``Circumventing API usage limits`` -> ``circumventing API
    usage limits`` (only the first letter)."""
    return text[:1].lower() + text[1:]


def plural(count: int, singular: str, many: str | None = None) -> str:
    """``1 app``, ``3 apps``, ``1,204 reports``."""
    return f"{count:,} {singular if count == 1 else many or singular + 's'}"


def format_number(value: float) -> str:
    """``17,840``; ``11.4``."""
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def format_cell(value: Any, tz: str) -> str:
    """A table cell: numbers grouped, an hour as ``4 Nov 2026 08:00``, a day as
    ``24 Sep 2026``, nothing as a dash, long text cut."""
    if value is None or value == "":
        return EMPTY_CELL
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_number(value)
    if isinstance(value, datetime):
        local = value.astimezone(ZoneInfo(tz))
        return f"{local.day} {local:%b %Y %H:%M}"
    if isinstance(value, date):
        return f"{value.day} {value:%b %Y}"
    text = " ".join(str(value).split())
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1].rstrip() + "…"


def is_numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def text_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], tz: str = "UTC") -> str:
    """Rows under their headers in aligned columns (numbers to the right), indented two."""
    cells = [[format_cell(v, tz) for v in row] for row in rows]
    right = [
        any(is_numeric(r[i]) for r in rows) and all(is_numeric(r[i]) or r[i] is None for r in rows)
        for i in range(len(headers))
    ]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        padded = (
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        )
        return ("  " + "   ".join(padded)).rstrip()

    return "\n".join([line(headers), *(line(c) for c in cells)])


def fit_lines(text: str, width: int = TEXT_WIDTH) -> str:
    """Every line at most ``width`` characters: a longer one (developer text, a long URL) is
    wrapped under its own indentation, a list item hung under its marker."""
    lines = []
    for line in text.split("\n"):
        if len(line) <= width:
            lines.append(line)
            continue
        body = line.lstrip(" ")
        lead = line[: len(line) - len(body)]
        marker = re.match(r"(?:[-*]|\d+\.) ", body)
        hang = lead + " " * (len(marker.group(0)) if marker else 0)
        lines.extend(
            textwrap.wrap(
                body,
                width,
                initial_indent=lead,
                subsequent_indent=hang,
                break_long_words=False,  # a long URL stays whole, and a working link
                break_on_hyphens=False,
            )
        )
    return "\n".join(lines)


def _join_names(values: Any, conjunction: str = "and") -> str:
    items = [str(v) for v in values]
    if len(items) <= 2:
        return f" {conjunction} ".join(items)
    return ", ".join(items[:-1]) + f", {conjunction} " + items[-1]


@dataclass
class _Sharing:
    """The recipients of one e-mail being rendered: the context of the current one, and the
    partials rendered so far for all of them."""

    recipient: Mapping[str, Any]
    done: dict[tuple[Any, ...], str]


_SHARING: ContextVar[_Sharing | None] = ContextVar("caseward_sharing", default=None)


class _SharingEnvironment(Environment):
    """Jinja, with partials (``partials/...``) that include nothing else rendered once for
    all the recipients of an e-mail when what they read is what those recipients share."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._seen: set[str] = set()  # the partials already looked at

    def get_template(
        self,
        name: str | Template,
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,
    ) -> Template:
        template = super().get_template(name, parent, globals)
        if isinstance(name, str) and name.startswith("partials/") and name not in self._seen:
            self._seen.add(name)
            _share(self, name, template)
        return template


# a partial with any of these is rendered per recipient
_NOT_SHARED = (
    nodes.Include,
    nodes.Import,
    nodes.FromImport,
    nodes.Extends,
    nodes.Macro,
    nodes.Assign,
    nodes.AssignBlock,
)


def _share(env: Environment, name: str, template: Template) -> None:
    """Render ``template`` once per e-mail when every variable it reads is one the
    recipients share (the very same object in each recipient's context)."""
    source = env.loader.get_source(env, name)[0] if env.loader else ""
    parsed = env.parse(source)
    if any(True for _ in parsed.find_all(_NOT_SHARED)):
        return  # what it includes may read anything; what it defines must run each time
    names = sorted(meta.find_undeclared_variables(parsed))
    render = template.root_render_func

    def shared_root(context: Context) -> Iterator[str]:
        sharing = _SHARING.get()
        values = [context.resolve_or_missing(n) for n in names]
        if sharing is None or any(
            v is missing or v is not sharing.recipient.get(n, env.globals.get(n, missing))
            for n, v in zip(names, values, strict=True)
        ):
            yield from render(context)  # a loop variable, a {% set %}: not shared
            return
        key = (name, *map(id, values))  # alive: held by the recipients' contexts
        if key not in sharing.done:
            sharing.done[key] = "".join(render(context))
        yield sharing.done[key]

    template.root_render_func = shared_root


class Renderer:
    """Renders ``<name>.subject.j2``, ``<name>.txt.j2`` and ``<name>.html.j2`` of a folder."""

    def __init__(self, template_dir: Traversable) -> None:
        self.template_dir = template_dir
        self.env = _SharingEnvironment(
            loader=ResourceLoader(template_dir),
            autoescape=select_autoescape(
                enabled_extensions=("html.j2",), default_for_string=False, default=False
            ),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        self.env.filters["when"] = format_instant
        self.env.filters["date"] = format_date
        self.env.filters["join_names"] = _join_names
        self.env.filters["wordwrap"] = wordwrap
        self.env.filters["bullet"] = bullet
        self.env.filters["plural"] = plural
        self.env.filters["lower_first"] = lower_first
        self.env.filters["number"] = format_number
        self.env.filters["cell"] = format_cell
        self.env.filters["text_table"] = text_table
        self.env.tests["numeric"] = is_numeric
        self.catalog = self._load_catalog()
        self.env.globals["catalog"] = self.catalog

    def _load_catalog(self) -> dict[str, Any]:
        return tomllib.loads(self.template_dir.joinpath("catalog.toml").read_text(encoding="utf-8"))

    def render(self, template: EmailTemplate | str, context: Mapping[str, Any]) -> RenderedEmail:
        """All three parts of ``template``; a missing variable raises :class:`RenderError`."""
        name = str(template)
        try:
            subject = self.env.get_template(f"{name}.subject.j2").render(context)
            text = self.env.get_template(f"{name}.txt.j2").render(context)
            html = self.env.get_template(f"{name}.html.j2").render(context)
        except TemplateError as exc:
            raise RenderError(f"template {name!r}: {exc}") from exc
        return RenderedEmail(
            subject=header_safe(subject, limit=200), text=fit_lines(text), html=html
        )

    def render_each(
        self, template: EmailTemplate | str, contexts: Sequence[Mapping[str, Any]]
    ) -> list[RenderedEmail]:
        """``template`` for each of ``contexts``, the recipients of one e-mail: what only
        differs per recipient is rendered per recipient; a partial that reads only values
        they share (the same objects, e.g. the policy) is rendered once for all of them."""
        sharing = _Sharing(recipient={}, done={})
        token = _SHARING.set(sharing)
        try:
            rendered = []
            for context in contexts:
                sharing.recipient = context
                rendered.append(self.render(template, context))
            return rendered
        finally:
            _SHARING.reset(token)


def leftover_syntax(text: str) -> list[str]:
    """Template delimiters left in rendered output (an unrendered or mis-quoted template)."""
    return _LEFTOVER_SYNTAX.findall(text)


@lru_cache(maxsize=8)
def get_renderer(template_dir: Traversable | None = None) -> Renderer:
    """The process-wide renderer of ``template_dir`` (default: :func:`packaged_templates`)."""
    return Renderer(template_dir or packaged_templates())
