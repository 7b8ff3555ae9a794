"""``caseward developers show``: a developer account as a lead reviews it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from cases.core.db import unit_of_work
from cases.core.schemas import DeveloperDetail
from cases.lifecycle import queries
from caseward.cli.case_views import case_list, columns, day
from caseward.cli.common import STATE, emit, fmt_time

developers_app = typer.Typer(
    help="Developer accounts: their apps, cases, strikes and e-mails.", no_args_is_help=True
)
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _view(detail: DeveloperDetail) -> RenderableType:
    parts: list[RenderableType] = [
        Text.assemble(
            (f"Developer {detail.id}", "bold"),
            f"  {detail.handle} <{detail.email}>  status ",
            (detail.status, "bold"),
        ),
        Text(
            f"strikes: {detail.active_strikes} active (an enforcement not overturned counts "
            f"for {detail.strike_window_days} days)",
            style="bold yellow" if detail.active_strikes else "",
        ),
        Text(""),
        Text(f"Apps ({len(detail.apps)})", style="bold underline"),
    ]
    apps = [[a.id, a.name, a.status, f"{a.requests_7d:,}"] for a in detail.apps]
    if apps:
        parts.append(Text("\n".join(columns(["id", "name", "status", "requests 7d"], apps, [3]))))
    parts += [Text(""), Text(f"Cases ({len(detail.cases)})", style="bold underline")]
    parts.append(case_list(detail.cases, STATE.now()))
    parts += [Text(""), Text(f"Strikes ({len(detail.strikes)})", style="bold underline")]
    strikes = [
        [str(s.case_id), s.policy, day(s.enforced_at), day(s.expires_at), s.status]
        for s in detail.strikes
    ]
    header = ["case", "policy", "enforced", "expires", "status"]
    parts.append(Text("\n".join(columns(header, strikes, [0])) if strikes else "none"))
    parts += [Text(""), Text(f"E-mails ({len(detail.emails)})", style="bold underline")]
    mails = [
        [str(m.id), str(m.case_id), m.template, m.status, fmt_time(m.sent_at)]
        for m in detail.emails
    ]
    header = ["id", "case", "template", "status", "sent"]
    parts.append(Text("\n".join(columns(header, mails, [0, 1])) if mails else "none"))
    return Group(*parts)


@developers_app.command("show")
def show(
    developer_id: Annotated[str, typer.Argument(help="The developer id.", show_default=False)],
    as_json: Json = False,
) -> None:
    """A developer's apps, cases, strikes (active, expired or overturned) and e-mails."""
    with unit_of_work() as session:
        detail = queries.developer_detail(session, developer_id=developer_id, now=STATE.now())
    emit(detail, as_json, lambda: _view(detail))


def register(app: typer.Typer) -> None:
    app.add_typer(developers_app, name="developers")
