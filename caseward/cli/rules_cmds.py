"""``caseward rules list|check``: the triage rules of the policy catalogue, and what they
would do to a snapshot's findings before they are switched on."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import typer
from rich.text import Text

from cases.core.db import unit_of_work
from cases.detection.run import banned_app_ids, detect_findings
from cases.enforcement.catalog import get_catalog
from cases.leads import rules
from caseward.cli.case_views import columns
from caseward.cli.common import emit, settings, spinner
from caseward.cli.detect_cmds import DataDir, open_checked

rules_app = typer.Typer(
    help="Triage rules: confirm or dismiss new cases by policy, severity and score.",
    no_args_is_help=True,
)
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
# findings listed per rule in the human output (--json lists every one)
EXAMPLES = 3


def _state() -> str:
    if settings().triage.enabled:
        return "triage rules are on: they decide the cases each detection run opens"
    return (
        "triage rules are off (switch them on with CASEWARD_TRIAGE__ENABLED=true, or "
        "[triage] enabled = true in caseward.toml)"
    )


@rules_app.command("list")
def list_rules(as_json: Json = False) -> None:
    """Every rule of the policy catalogue, in the order it is tried."""
    rows = [
        {
            "name": rule.name,
            "policy": str(policy),
            "decision": rule.decision,
            "severities": [str(s) for s in rule.severities],
            "threshold": rules.threshold(rule),
            "actor": f"rule:{rule.name}",
        }
        for policy, entry in get_catalog().policies.items()
        for rule in entry.triage
    ]
    result = {"enabled": settings().triage.enabled, "rules": rows}
    header = ["rule", "policy", "decision", "severities", "when"]
    cells = [
        [str(r["name"]), str(r["policy"]), str(r["decision"]), "/".join(r["severities"]),
         str(r["threshold"])]
        for r in rows
    ]  # fmt: skip
    emit(
        result,
        as_json,
        lambda: Text("\n".join([_state(), "", *columns(header, cells)]) if rows else _state()),
    )


@rules_app.command("check")
def check(data: DataDir, as_json: Json = False) -> None:
    """Run the detectors on a snapshot and show what the current rules would do to its
    findings. Changes nothing: no registry import, no case, no event."""
    with unit_of_work() as session:
        banned = banned_app_ids(session)  # read only, as detection reads it
    with spinner("checking") as progress, open_checked(data, progress) as snapshot:
        findings = detect_findings(snapshot, settings().detection, banned=banned, progress=progress)
    found = rules.verdicts(findings)
    result: dict[str, Any] = {
        "enabled": settings().triage.enabled,
        "findings": found,
        "decided": dict(Counter(v.rule for v in found if v.rule)),
        "undecided": sum(1 for v in found if v.rule is None),
    }
    emit(result, as_json, lambda: _check_view(found))


def _check_view(found: list[rules.RuleVerdict]) -> Text:
    lines = [_state(), f"what the rules would do to the {len(found)} finding(s):", ""]
    header = ["rule", "decision", "findings", "for example (policy, severity, score, apps)"]
    cells = []
    for name in [*dict.fromkeys(v.rule for v in found if v.rule), None]:
        mine = [v for v in found if v.rule == name]
        if not mine:
            continue
        examples = "; ".join(
            f"{v.policy} {v.severity} {v.score:g} {' '.join(v.app_ids[:2])}"
            for v in mine[:EXAMPLES]
        )
        cells.append(
            [name or "(no rule)", mine[0].decision or "a lead decides", str(len(mine)), examples]
        )
    return Text("\n".join(lines + columns(header, cells, right=[2]) if cells else lines))


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")
