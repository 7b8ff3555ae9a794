"""``caseward apps ...``: the registry as Caseward sees it."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Group

from cases.core.db import unit_of_work
from cases.core.schemas import AppRead
from cases.lifecycle import queries
from caseward.cli.case_cmds import Json
from caseward.cli.case_views import case_list
from caseward.cli.common import STATE, emit

apps_app = typer.Typer(help="Registered apps and their cases.", no_args_is_help=True)


def _view(app: AppRead) -> Any:
    return Group(
        f"[bold]{app.id}[/bold] {app.name}  status [bold]{app.status}[/bold]  "
        f"developer {app.developer_id} ({app.developer_status})",
        f"website: {app.website or '-'}   requests (7 days): {app.requests_7d:,}",
        case_list(app.cases, STATE.now()),
    )


@apps_app.command("show")
def show(
    app_id: Annotated[str, typer.Argument(help="The app id.", show_default=False)],
    as_json: Json = False,
) -> None:
    """An app's registry status and its cases."""
    with unit_of_work() as session:
        app = queries.app_detail(session, app_id=app_id)
    emit(app, as_json, lambda: _view(app))


def register(app: typer.Typer) -> None:
    app.add_typer(apps_app, name="apps")
