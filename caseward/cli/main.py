"""Root of the CLI: global options, command groups, and the exit-code contract.

Exit codes: 0 success; 1 the operation failed; 2 bad usage, unknown id or illegal move.
Errors print one line on stderr; nothing is changed when a command fails.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Annotated

import click
import typer
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from cases.core.db import get_engine
from cases.core.errors import CasewardError
from cases.core.inert import inert
from cases.core.redact import redact, url_password
from cases.core.settings import get_settings, secrets_of
from caseward.cli import (
    admin_cmds,
    appeal_cmds,
    apps_cmds,
    case_cmds,
    developer_cmds,
    doctor_cmds,
    queue_cmds,
)
from caseward.cli.common import STATE

try:  # newer typer parses with its own copy of click, whose exceptions are not click's
    from typer._click import exceptions as _typer_click

    CLICK_ERRORS: tuple[type[Exception], ...] = (
        click.ClickException,
        _typer_click.ClickException,
    )
except ImportError:  # pragma: no cover - typer releases that use click itself
    CLICK_ERRORS = (click.ClickException,)
EXITS = (click.exceptions.Exit, typer.Exit)
ABORTS = (click.exceptions.Abort, typer.Abort)

app = typer.Typer(
    name="caseward",
    help="Enforcement case manager for developer API platforms.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            help="Simulated current time (ISO 8601), simulation mode only; also CASEWARD_NOW.",
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor",
            help="Who is acting (simulation mode only); also CASEWARD_ACTOR. Otherwise: the "
            'login user, or the database role with identity = "database".',
        ),
    ] = None,
) -> None:
    STATE.now_text = now
    STATE.actor = actor
    STATE.check()


for module in (
    admin_cmds,
    case_cmds,
    appeal_cmds,
    apps_cmds,
    developer_cmds,
    doctor_cmds,
    queue_cmds,
):
    module.register(app)


def _optional_groups() -> None:
    """Command groups from the detection, e-mail, orchestration, rules and statements packages."""
    from caseward.cli import (
        detect_cmds,
        outbox_cmds,
        rules_cmds,
        serve_cmds,
        statements_cmds,
        web_cmds,
    )

    detect_cmds.register(app)
    rules_cmds.register(app)
    outbox_cmds.register(app)
    serve_cmds.register(app)
    statements_cmds.register(app)
    web_cmds.register(app)


_optional_groups()


def _database_problem(exc: SQLAlchemyError) -> str:
    """One line about a database error; a database without the schema says what to run."""
    engine = get_engine()
    try:
        initialised = inspect(engine).has_table("cases")
    except SQLAlchemyError:
        initialised = True  # unreachable: report the original error
    if not initialised:
        url = engine.url.render_as_string(hide_password=True)
        return f"the database {url} has no Caseward schema yet: run `caseward init` first"
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"database error: {first_line}"


def _secrets() -> list[str]:
    """The configuration's secrets, to mask in anything printed; from the environment when
    the configuration itself is what failed."""
    try:
        return secrets_of(get_settings())
    except CasewardError:
        keys = (
            "SENDGRID_API_KEY",
            "CASEWARD_SENDGRID_API_KEY",
            "CASEWARD_PLATFORM__API_TOKEN",
            "CASEWARD_PORTAL__SECRET_KEY",
        )
        return url_password(os.environ.get("CASEWARD_DATABASE_URL", "")) + [
            os.environ[k] for k in keys if os.environ.get(k)
        ]


def _say(message: str) -> None:
    """One line on stderr: secrets masked, control and bidi characters made inert."""
    line = " ".join(redact(message, _secrets()).split())
    click.echo(f"caseward: {inert(line)}", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns (and as a script exits with) the exit code."""
    try:
        result = app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except EXITS as exc:
        code = exc.exit_code
    except CLICK_ERRORS as exc:
        _say(exc.format_message())  # type: ignore[attr-defined]
        code = exc.exit_code  # type: ignore[attr-defined]
    except ABORTS:
        _say("aborted")
        code = 1
    except CasewardError as exc:
        _say(str(exc))
        code = exc.exit_code
    except SQLAlchemyError as exc:
        _say(_database_problem(exc))
        code = 1
    except Exception as exc:  # a bug: its traceback, secrets masked, then one line
        trace = "".join(traceback.format_exception(exc))
        sys.stderr.write(inert(redact(trace, _secrets())))
        _say(f"internal error ({type(exc).__name__}); please report it with the lines above")
        code = 1
    else:
        code = result if isinstance(result, int) else 0
    if argv is None:
        sys.exit(code)
    return code
