"""The lifecycle as data: every (operation, status) pair is either declared or refused."""

from __future__ import annotations

import re
from itertools import product
from pathlib import Path

import pytest

from cases.core.enums import CaseStatus
from cases.core.errors import TransitionNotAllowed, UsageError
from cases.lifecycle.states import (
    EVENTS,
    ON_TIMEOUT,
    TERMINAL,
    TIMERS,
    TRANSITIONS,
    Op,
    allowed_targets,
    check_event,
    check_transition,
)

S = CaseStatus
TRANSITION_PAIRS = list(product(TRANSITIONS, CaseStatus))
EVENT_PAIRS = list(product(EVENTS, CaseStatus))


def _pair_id(pair: tuple[Op, CaseStatus]) -> str:
    op, status = pair
    return f"{op.value}-from-{status.value}"


@pytest.mark.parametrize("pair", TRANSITION_PAIRS, ids=_pair_id)
def test_transition_allowed_exactly_from_declared_sources(pair: tuple[Op, CaseStatus]) -> None:
    op, status = pair
    spec = TRANSITIONS[op]
    if status in spec.sources:
        assert check_transition(op, status) is spec
    else:
        with pytest.raises(TransitionNotAllowed) as refused:
            check_transition(op, status)
        message = str(refused.value)
        assert status.value in message
        assert all(source.value in message for source in spec.sources)


@pytest.mark.parametrize("pair", EVENT_PAIRS, ids=_pair_id)
def test_event_allowed_exactly_in_declared_statuses(pair: tuple[Op, CaseStatus]) -> None:
    op, status = pair
    spec = EVENTS[op]
    if status in spec.allowed_in:
        assert check_event(op, status) is spec
    else:
        with pytest.raises(TransitionNotAllowed, match=status.value):
            check_event(op, status)


@pytest.mark.parametrize(
    "pair",
    list(product(CaseStatus, CaseStatus)),
    ids=lambda p: f"{p[0].value}-to-{p[1].value}",
)
def test_status_pair_is_reachable_iff_some_transition_declares_it(
    pair: tuple[CaseStatus, CaseStatus],
) -> None:
    source, target = pair
    declared = {op for op, spec in TRANSITIONS.items() if (source, target) in _edges(spec)}
    assert (target in allowed_targets(source)) == bool(declared)
    for op in TRANSITIONS:
        if op in declared:
            assert check_transition(op, source).target is target
        elif source not in TRANSITIONS[op].sources:
            with pytest.raises(TransitionNotAllowed):
                check_transition(op, source)


def _edges(spec: object) -> set[tuple[CaseStatus, CaseStatus]]:
    return {(s, spec.target) for s in spec.sources}  # type: ignore[attr-defined]


@pytest.mark.parametrize("op", sorted(set(Op) - set(TRANSITIONS)), ids=str)
def test_non_transitions_are_refused_as_transitions(op: Op) -> None:
    with pytest.raises(TransitionNotAllowed, match="not a status transition"):
        check_transition(op, CaseStatus.OPENED)


@pytest.mark.parametrize("op", sorted(set(Op) - set(EVENTS)), ids=str)
def test_transitions_are_refused_as_events(op: Op) -> None:
    with pytest.raises(TransitionNotAllowed, match="not an event"):
        check_event(op, CaseStatus.OPENED)


def test_refusals_are_usage_errors() -> None:
    assert issubclass(TransitionNotAllowed, UsageError)
    assert TransitionNotAllowed.exit_code == 2


def test_every_op_is_a_transition_or_an_event_but_not_both() -> None:
    assert set(TRANSITIONS) | set(EVENTS) | {Op.OPEN} == set(Op)
    assert not set(TRANSITIONS) & set(EVENTS)


def test_terminal_statuses_have_no_way_out() -> None:
    for status in TERMINAL:
        assert allowed_targets(status) == frozenset()
    for status in set(CaseStatus) - TERMINAL:
        assert allowed_targets(status), f"{status} is a dead end"


def test_every_status_is_reachable_from_opened() -> None:
    seen, todo = {CaseStatus.OPENED}, [CaseStatus.OPENED]
    while todo:
        for target in allowed_targets(todo.pop()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    assert seen == set(CaseStatus)


def test_timeouts_are_legal_transitions_of_timed_statuses() -> None:
    assert set(ON_TIMEOUT) == set(TIMERS)
    for status, op in ON_TIMEOUT.items():
        assert check_transition(op, status).sources >= {status}


# The README's lifecycle diagram, edge by edge, written out by hand: a change to the table
# must change this list (and the diagram) on purpose.
README_EDGES: frozenset[tuple[CaseStatus, CaseStatus, Op]] = frozenset(
    {
        (S.OPENED, S.CONFIRMED, Op.CONFIRM),
        (S.OPENED, S.DISMISSED, Op.DISMISS),
        (S.CONFIRMED, S.DISMISSED, Op.DISMISS),
        (S.CONFIRMED, S.OUTREACH_SENT, Op.SEND_OUTREACH),
        (S.OUTREACH_SENT, S.CHANGES_REQUESTED, Op.REQUEST_CHANGES),
        (S.OUTREACH_SENT, S.COMPLIANCE_REPORTED, Op.REPORT_COMPLIANCE),
        (S.CHANGES_REQUESTED, S.COMPLIANCE_REPORTED, Op.REPORT_COMPLIANCE),
        (S.COMPLIANCE_REPORTED, S.CHANGES_REQUESTED, Op.REJECT_COMPLIANCE),
        (S.OUTREACH_SENT, S.RESOLVED, Op.RESOLVE),
        (S.CHANGES_REQUESTED, S.RESOLVED, Op.RESOLVE),
        (S.COMPLIANCE_REPORTED, S.RESOLVED, Op.RESOLVE),
        (S.CHANGES_REQUESTED, S.ENFORCEMENT_DUE, Op.ESCALATE),
        (S.CONFIRMED, S.ENFORCEMENT_DUE, Op.APPROVE_URGENT),
        (S.OUTREACH_SENT, S.ENFORCEMENT_DUE, Op.APPROVE_URGENT),
        (S.CHANGES_REQUESTED, S.ENFORCEMENT_DUE, Op.APPROVE_URGENT),
        (S.COMPLIANCE_REPORTED, S.ENFORCEMENT_DUE, Op.APPROVE_URGENT),
        (S.ENFORCEMENT_DUE, S.ENFORCED, Op.ENFORCE),
        (S.ENFORCED, S.APPEALED, Op.SUBMIT_APPEAL),
        (S.ENFORCED, S.CLOSED, Op.CLOSE),
        (S.ENFORCEMENT_DUE, S.RESOLVED, Op.DECLINE_ENFORCEMENT),
        (S.APPEALED, S.CLOSED, Op.UPHOLD),
        (S.APPEALED, S.CLOSED, Op.OVERTURN),
    }
)


def test_the_table_is_the_readme_diagram_edge_by_edge() -> None:
    declared = {
        (source, spec.target, op) for op, spec in TRANSITIONS.items() for source in spec.sources
    }
    assert declared - README_EDGES == set(), "in TRANSITIONS, missing from the diagram"
    assert README_EDGES - declared == set(), "in the diagram, missing from TRANSITIONS"


def test_the_readme_diagram_draws_the_same_edges() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    diagram = readme.split("stateDiagram-v2", 1)[1].split("```", 1)[0]
    drawn = set(re.findall(r"^\s*(\w+) --> (\w+):", diagram, re.M))
    assert drawn == {(source.value, target.value) for source, target, _ in README_EDGES}
