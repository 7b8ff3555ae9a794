"""The lifecycle as data: every (operation, status) pair is either declared or refused."""

from __future__ import annotations

from itertools import product

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
