"""Simulation is a mode: outside it, the time is real, identities come from the system, an
empty lead list lets nobody decide, and a configuration mistake is an error.

Each refusal is one line on stderr, exit 2, and the database unchanged.
"""

from __future__ import annotations

import json
import pwd
from os import geteuid
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cases.core.db import session_scope
from cases.core.enums import CaseStatus
from cases.core.errors import ConfigError, GuardFailed, InvalidInput
from cases.core.identity import claimable
from cases.core.settings import get_settings
from cases.lifecycle import briefs, service
from caseward.cli.main import main
from flows._tasks import resolve_now
from tests import factories as f
from tests.conftest import reset_caches
from tests.factories import T0, TIMES, days

S = CaseStatus
LOGIN = pwd.getpwuid(geteuid()).pw_name
LATER = TIMES["enforce"] + days(3)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def refused(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 2) -> str:
    """Run a command that must be refused; its one line on stderr."""
    got, out, err = run(capsys, *argv)
    assert got == code, (out, err)
    assert out == "" and err.startswith("caseward: ") and err.count("\n") == 1, err
    return err


def use_config(monkeypatch: pytest.MonkeyPatch, path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("CASEWARD_CONFIG", str(path))
    reset_caches()


def setenv(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    reset_caches()


# --- simulated time and typed identities only in simulation ------------------------------


@pytest.mark.parametrize(
    "option",
    [
        ["--now", "2028-01-01T00:00:00Z", "advance"],
        ["--actor", "bob", "cases", "confirm", "{case}", "--reason", "r"],
        ["--actor", "bob", "advance"],  # refused even where no actor is recorded
    ],
    ids=["--now", "--actor", "--actor-on-advance"],
)
def test_simulated_time_and_typed_actors_are_refused_in_production(
    engine: Engine,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    option: list[str],
) -> None:
    case_id = f.case_in(engine, S.CHANGES_REQUESTED)  # built in simulation
    setenv(monkeypatch, "CASEWARD_SIMULATION", "false")
    before = f.db_state(engine, case_id)
    err = refused(capsys, *(a.format(case=case_id) for a in option))
    assert "only in simulation mode" in err
    assert f.db_state(engine, case_id) == before


def test_now_and_actor_from_the_environment_or_file_are_refused_in_production(
    engine: Engine,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    case_id = f.case_in(engine, S.CHANGES_REQUESTED)
    setenv(monkeypatch, "CASEWARD_SIMULATION", "false")
    before = f.db_state(engine, case_id)
    setenv(monkeypatch, "CASEWARD_NOW", "2028-01-01T00:00:00Z")
    assert "CASEWARD_NOW" in refused(capsys, "advance")
    monkeypatch.delenv("CASEWARD_NOW")
    use_config(monkeypatch, tmp_path / "c.toml", 'now = "2028-01-01T00:00:00Z"\n')
    assert "simulation mode" in refused(capsys, "advance")
    monkeypatch.delenv("CASEWARD_CONFIG")
    setenv(monkeypatch, "CASEWARD_ACTOR", "bob")
    assert "CASEWARD_ACTOR" in refused(capsys, "cases", "confirm", str(case_id), "--reason", "r")
    assert f.db_state(engine, case_id) == before


@pytest.mark.parametrize("name", ["caseward", "Caseward", "detector", "outbox", "rule:spam",
                                  "developer:d-1", "bob smith", "x" * 101])  # fmt: skip
def test_system_identities_and_odd_names_cannot_be_claimed(
    engine: Engine, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    case_id = f.case_in(engine, S.OPENED)
    before = f.db_state(engine, case_id)
    refused(capsys, "--now", T0.isoformat(), "--actor", name, "cases", "confirm", str(case_id),
            "--reason", "r")  # fmt: skip
    assert f.db_state(engine, case_id) == before


def test_claimable_names() -> None:
    assert claimable("lead-ann", source="--actor") == "lead-ann"
    with pytest.raises(GuardFailed, match="the login user: 'CASEWARD' is one of"):
        claimable("CASEWARD", source="the login user")  # an OS account named like the system
    with pytest.raises(InvalidInput, match="not a plain name"):
        claimable("ann\x1b[31m", source="--actor")


def test_a_time_before_the_cases_latest_event_is_refused_even_in_simulation(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id = f.case_in(engine, S.ENFORCED)  # its latest event is at TIMES["enforce"]
    before = f.db_state(engine, case_id)
    err = refused(capsys, "--now", (TIMES["enforce"] - days(1)).isoformat(), "--actor", "dev",
                  "appeal", "submit", str(case_id), "--statement", "fixed")  # fmt: skip
    assert f"case {case_id}" in err and "earlier than the case's latest event" in err
    assert f.db_state(engine, case_id) == before
    code, _, err = run(capsys, "--now", TIMES["enforce"].isoformat(), "--actor", "dev",
                       "appeal", "submit", str(case_id), "--statement", "fixed")  # fmt: skip
    assert code == 0, err  # the same instant is not the past


def test_a_sweep_in_a_cases_past_fails_that_case_only(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    behind = f.case_in(engine, S.CHANGES_REQUESTED)
    with session_scope(engine) as session:  # a lead's note, dated after the deadline
        service.add_evidence(
            session, case_id=behind, note="seen again", actor="lead-ann", now=LATER
        )
    other = f.case_in(engine, S.CHANGES_REQUESTED)
    code, out, _ = run(capsys, "--now", TIMES["enforce"].isoformat(), "advance", "--json")
    assert code == 1
    result = json.loads(out)["expire-deadlines"]
    assert result["done"] == [other] and list(result["failed"]) == [str(behind)]
    assert "latest event" in result["failed"][str(behind)]


@pytest.mark.usefixtures("production")
def test_flows_refuse_a_simulated_time_in_production() -> None:
    with pytest.raises(ConfigError, match="simulation mode"):
        resolve_now("2028-01-01T00:00:00Z")
    assert resolve_now(None)  # the real clock


def test_sendgrid_is_refused_in_simulation(
    engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    f.case_in(engine, S.OUTREACH_SENT)
    setenv(monkeypatch, "CASEWARD_EMAIL__BACKEND", "sendgrid")
    err = refused(capsys, "outbox", "send")
    assert "sendgrid is refused in simulation mode" in err


@pytest.mark.parametrize("host", ["http://127.0.0.1:8025", "http://localhost:8025"])
def test_a_sendgrid_stand_in_on_this_machine_is_allowed_in_simulation(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    setenv(monkeypatch, "CASEWARD_EMAIL__BACKEND", "sendgrid")
    setenv(monkeypatch, "CASEWARD_EMAIL__SENDGRID_HOST", host)  # reaches no developer
    assert get_settings().email.sendgrid_host == host
    setenv(monkeypatch, "CASEWARD_EMAIL__SENDGRID_HOST", "https://api.sendgrid.com.evil")
    with pytest.raises(ConfigError, match="refused in simulation mode"):
        get_settings()


# --- identities from the system ------------------------------------------------------------


@pytest.mark.usefixtures("production")
def test_outside_simulation_the_actor_is_the_login_user(
    engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    setenv(monkeypatch, "CASEWARD_LEADS", json.dumps([LOGIN]))
    monkeypatch.setenv("USER", "someone-else")  # $USER is not who the process runs as
    case_id = f.case_in(engine, S.OPENED)
    code, _, err = run(capsys, "cases", "confirm", str(case_id), "--reason", "checked", "--json")
    assert code == 0, err
    shown = json.loads(run(capsys, "cases", "show", str(case_id), "--json")[1])
    assert shown["events"][-1]["actor"] == LOGIN


@pytest.mark.usefixtures("production")
def test_with_database_identity_the_actor_is_the_postgres_role(
    pg_engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    role = pg_engine.url.username or "postgres"
    setenv(monkeypatch, "CASEWARD_IDENTITY", "database")
    setenv(monkeypatch, "CASEWARD_LEADS", json.dumps([role]))
    case_id = f.case_in(pg_engine, S.OPENED)
    code, _, err = run(capsys, "cases", "confirm", str(case_id), "--reason", "checked", "--json")
    assert code == 0, err
    shown = json.loads(run(capsys, "cases", "show", str(case_id), "--json")[1])
    assert shown["events"][-1]["actor"] == role


def test_database_identity_needs_postgres(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    setenv(monkeypatch, "CASEWARD_IDENTITY", "database")
    assert "needs a PostgreSQL database_url" in refused(capsys, "cases", "list")


# --- leads ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("production")
def test_with_no_leads_nobody_decides_in_production(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id = f.case_in(engine, S.OPENED)
    before = f.db_state(engine, case_id)
    err = refused(capsys, "cases", "confirm", str(case_id), "--reason", "r")
    assert "no leads are configured" in err and "CASEWARD_LEADS" in err
    assert f.db_state(engine, case_id) == before
    with session_scope(engine) as session:  # the Prefect form offers nobody either
        brief = briefs.case_brief(session, case_id=case_id)
    assert briefs.eligible_reviewers(brief) == []


@pytest.mark.usefixtures("production")
def test_a_login_user_who_is_not_a_lead_is_refused(
    engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    setenv(monkeypatch, "CASEWARD_LEADS", json.dumps(["ann", "bob"]))
    case_id = f.case_in(engine, S.OPENED)
    err = refused(capsys, "cases", "confirm", str(case_id), "--reason", "r")
    assert f"{LOGIN!r} is not a lead" in err


def test_in_simulation_an_empty_lead_list_lets_anyone_decide(engine: Engine) -> None:
    case_id = f.case_in(engine, S.OPENED)
    with session_scope(engine) as session:
        assert briefs.eligible_reviewers(briefs.case_brief(session, case_id=case_id)) is None


# --- configuration mistakes ------------------------------------------------------------------

CONFIG_MISTAKES = {
    "unknown key": ('database_url = "sqlite:///x.db"\nlead = ["ann"]\n',
                    ":2: unknown key 'lead' (did you mean leads?)"),
    "unknown key in a table": ('[email]\nbackend = "file"\nsendr = "a@b.example"\n',
                               ":3: unknown key 'email.sendr' (did you mean email.sender?)"),
    "not TOML": ('[email\nbackend = "file"\n', ":1:7: not valid TOML"),
    "a value of the wrong type": ("[deadlines]\nchange_days = \"soon\"\n",
                                  "deadlines.change_days: Input should be a valid integer"),
    "a system identity as a lead": ('leads = ["caseward"]\n', "system identities"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CONFIG_MISTAKES))
def test_configuration_file_mistakes_are_errors(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
) -> None:
    text, expected = CONFIG_MISTAKES[name]
    use_config(monkeypatch, tmp_path / "caseward.toml", text)
    assert expected in refused(capsys, "cases", "list")


ENV_MISTAKES = {
    "CASEWARD_LEAD": ('["ann"]', "unknown setting CASEWARD_LEAD in the environment (did you "
                                 "mean CASEWARD_LEADS?)"),
    "CASEWARD_EMAIL__BACKND": ("file", "did you mean CASEWARD_EMAIL__BACKEND?"),
    "CASEWARD_LEADS": ("ann", "leads could not be parsed"),
    "CASEWARD_DEADLINES__CHANGE_DAYS": ("thirty", "deadlines.change_days"),
    "CASEWARD_SIMULATION": ("maybe", "simulation: Input should be a valid boolean"),
    "CASEWARD_CONFIG": ("/nowhere/caseward.toml", "CASEWARD_CONFIG names /nowhere/caseward.toml"),
}  # fmt: skip


@pytest.mark.parametrize("variable", list(ENV_MISTAKES))
def test_environment_mistakes_are_errors(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    value, expected = ENV_MISTAKES[variable]
    setenv(monkeypatch, variable, value)
    assert expected in refused(capsys, "config")


def test_open_ended_tables_and_other_variables_are_accepted(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_config(
        monkeypatch,
        tmp_path / "caseward.toml",
        'leads = ["ann"]\n[detection.duplicate_env_labels]\ndev = ["dev", "develop"]\n',
    )
    monkeypatch.setenv("CASEWARD_MAIL_DIR", str(tmp_path / "mail"))
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.x")
    code, out, err = run(capsys, "config", "--json")
    assert code == 0, err
    assert json.loads(out)["detection"]["duplicate_env_labels"]["dev"] == ["dev", "develop"]
