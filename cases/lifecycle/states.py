"""The enforcement lifecycle as data: statuses, operations, what each causes. No I/O here.

Every change to a case is an *operation* (``Op``). An operation either moves the case to
another status (a transition, declared in ``TRANSITIONS``) or records something without a
status change (``EVENTS``). What happens on entering a step (e-mails, timers) is declared
here too, so services and flows never branch on status themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cases.core.enums import ActionKind, CaseStatus, EmailTemplate
from cases.core.errors import TransitionNotAllowed


class Op(StrEnum):
    """Everything that can happen to a case; also the ``kind`` of its events."""

    OPEN = "open"
    CONFIRM = "confirm"
    DISMISS = "dismiss"
    SEND_OUTREACH = "send_outreach"
    REQUEST_CHANGES = "request_changes"
    REPORT_COMPLIANCE = "report_compliance"
    REJECT_COMPLIANCE = "reject_compliance"
    RESOLVE = "resolve"
    ESCALATE = "escalate"
    APPROVE_URGENT = "approve_urgent"
    DECLINE_ENFORCEMENT = "decline_enforcement"
    ENFORCE = "enforce"
    SUBMIT_APPEAL = "submit_appeal"
    UPHOLD = "uphold"
    OVERTURN = "overturn"
    CLOSE = "close"
    # events that leave the status as it is
    EVIDENCE_REFRESHED = "evidence_refreshed"
    NOTICE_DELIVERED = "notice_delivered"
    DELIVERY_FAILED = "delivery_failed"
    DELIVERY_UNBLOCKED = "delivery_unblocked"
    DELIVERY_UNCERTAIN = "delivery_uncertain"
    DELIVERY_RESOLVED = "delivery_resolved"
    # what SendGrid's Event Webhook reports besides delivery and bounces
    DELIVERY_DEFERRED = "delivery_deferred"
    SPAM_REPORTED = "spam_reported"
    REMINDER_SENT = "reminder_sent"
    EXTEND = "extend"
    REQUEST_EXTENSION = "request_extension"
    DECLINE_EXTENSION = "decline_extension"
    ACKNOWLEDGE = "acknowledge"
    APPROVE_ENFORCEMENT = "approve_enforcement"
    ACTIONS_APPLIED = "actions_applied"
    ASSIGN = "assign"


S = CaseStatus

ACTIVE_BEFORE_ENFORCEMENT = frozenset(
    {S.CONFIRMED, S.OUTREACH_SENT, S.CHANGES_REQUESTED, S.COMPLIANCE_REPORTED}
)
# Before its outreach, apps and accounts found later may join a case (they are told with
# everyone else); afterwards they get a case of their own, with its own notices and deadlines.
BEFORE_OUTREACH = frozenset({S.OPENED, S.CONFIRMED})


@dataclass(frozen=True)
class TransitionSpec:
    """Where an operation may start, where it ends, and what entering it sends.

    ``lead_only``: a lead's decision; ``by_rule``: one a triage rule of the policy catalogue
    may also take (as actor ``rule:<name>``).
    """

    sources: frozenset[CaseStatus]
    target: CaseStatus
    emails: tuple[EmailTemplate, ...] = ()
    lead_only: bool = False
    by_rule: bool = False


TRANSITIONS: dict[Op, TransitionSpec] = {
    Op.CONFIRM: TransitionSpec(frozenset({S.OPENED}), S.CONFIRMED, lead_only=True, by_rule=True),
    Op.DISMISS: TransitionSpec(
        frozenset({S.OPENED, S.CONFIRMED}), S.DISMISSED, lead_only=True, by_rule=True
    ),
    Op.SEND_OUTREACH: TransitionSpec(
        frozenset({S.CONFIRMED}), S.OUTREACH_SENT, (EmailTemplate.OUTREACH,)
    ),
    Op.REQUEST_CHANGES: TransitionSpec(
        frozenset({S.OUTREACH_SENT}), S.CHANGES_REQUESTED, (EmailTemplate.FEATURE_CHANGE_REQUEST,)
    ),
    Op.REPORT_COMPLIANCE: TransitionSpec(
        frozenset({S.OUTREACH_SENT, S.CHANGES_REQUESTED}), S.COMPLIANCE_REPORTED
    ),
    # a rejected report is a new change request: a new notice, a new deadline on delivery
    Op.REJECT_COMPLIANCE: TransitionSpec(
        frozenset({S.COMPLIANCE_REPORTED}),
        S.CHANGES_REQUESTED,
        (EmailTemplate.FEATURE_CHANGE_REQUEST,),
        lead_only=True,
    ),
    Op.RESOLVE: TransitionSpec(
        frozenset({S.OUTREACH_SENT, S.CHANGES_REQUESTED, S.COMPLIANCE_REPORTED}),
        S.RESOLVED,
        (EmailTemplate.CASE_RESOLVED,),
        lead_only=True,
    ),
    Op.ESCALATE: TransitionSpec(frozenset({S.CHANGES_REQUESTED}), S.ENFORCEMENT_DUE),
    Op.APPROVE_URGENT: TransitionSpec(ACTIVE_BEFORE_ENFORCEMENT, S.ENFORCEMENT_DUE, lead_only=True),
    # a lead decides against a planned enforcement before it runs
    Op.DECLINE_ENFORCEMENT: TransitionSpec(
        frozenset({S.ENFORCEMENT_DUE}),
        S.RESOLVED,
        (EmailTemplate.ENFORCEMENT_DECLINED,),
        lead_only=True,
    ),
    # the enforcement notice depends on the actions taken: see ENFORCEMENT_NOTICES
    Op.ENFORCE: TransitionSpec(frozenset({S.ENFORCEMENT_DUE}), S.ENFORCED),
    Op.SUBMIT_APPEAL: TransitionSpec(
        frozenset({S.ENFORCED}), S.APPEALED, (EmailTemplate.APPEAL_RECEIVED,)
    ),
    Op.UPHOLD: TransitionSpec(
        frozenset({S.APPEALED}), S.CLOSED, (EmailTemplate.APPEAL_UPHELD,), lead_only=True
    ),
    Op.OVERTURN: TransitionSpec(
        frozenset({S.APPEALED}), S.CLOSED, (EmailTemplate.APPEAL_OVERTURNED,), lead_only=True
    ),
    Op.CLOSE: TransitionSpec(frozenset({S.ENFORCED}), S.CLOSED),
}


@dataclass(frozen=True)
class EventSpec:
    """An operation that records something without moving the case."""

    allowed_in: frozenset[CaseStatus]
    emails: tuple[EmailTemplate, ...] = ()
    lead_only: bool = False


OPEN_STATUSES = frozenset(set(CaseStatus) - {S.DISMISSED, S.RESOLVED, S.CLOSED})

EVENTS: dict[Op, EventSpec] = {
    Op.EVIDENCE_REFRESHED: EventSpec(OPEN_STATUSES),
    Op.NOTICE_DELIVERED: EventSpec(frozenset(CaseStatus)),
    Op.DELIVERY_FAILED: EventSpec(frozenset(CaseStatus)),
    Op.DELIVERY_UNBLOCKED: EventSpec(frozenset(CaseStatus), lead_only=True),
    Op.DELIVERY_UNCERTAIN: EventSpec(frozenset(CaseStatus)),
    Op.DELIVERY_RESOLVED: EventSpec(frozenset(CaseStatus), lead_only=True),
    Op.DELIVERY_DEFERRED: EventSpec(frozenset(CaseStatus)),
    Op.SPAM_REPORTED: EventSpec(frozenset(CaseStatus)),
    Op.REMINDER_SENT: EventSpec(
        frozenset({S.CHANGES_REQUESTED}), (EmailTemplate.DEADLINE_REMINDER,)
    ),
    Op.EXTEND: EventSpec(
        frozenset({S.CHANGES_REQUESTED}), (EmailTemplate.EXTENSION_GRANTED,), lead_only=True
    ),
    # a developer asks for more time; a lead grants (EXTEND) or declines it
    Op.REQUEST_EXTENSION: EventSpec(
        frozenset({S.CHANGES_REQUESTED}), (EmailTemplate.EXTENSION_REQUESTED,)
    ),
    Op.DECLINE_EXTENSION: EventSpec(
        frozenset({S.CHANGES_REQUESTED}), (EmailTemplate.EXTENSION_DECLINED,), lead_only=True
    ),
    Op.ACKNOWLEDGE: EventSpec(frozenset({S.OUTREACH_SENT, S.CHANGES_REQUESTED})),
    Op.APPROVE_ENFORCEMENT: EventSpec(frozenset({S.ENFORCEMENT_DUE}), lead_only=True),
    # the platform applied actions after the enforcement's first notice: their own notice
    Op.ACTIONS_APPLIED: EventSpec(frozenset({S.ENFORCED, S.APPEALED})),
    Op.ASSIGN: EventSpec(OPEN_STATUSES, lead_only=True),
}

# A status whose timer starts when the notice that entered it is delivered, and the
# DeadlineSettings field that sets its length.
TIMERS: dict[CaseStatus, str] = {
    S.OUTREACH_SENT: "outreach_response_days",
    S.CHANGES_REQUESTED: "change_days",
    S.ENFORCED: "appeal_window_days",
}

# What the sweeper does when a status's deadline has passed.
ON_TIMEOUT: dict[CaseStatus, Op] = {
    S.OUTREACH_SENT: Op.REQUEST_CHANGES,
    S.CHANGES_REQUESTED: Op.ESCALATE,
    S.ENFORCED: Op.CLOSE,
}

ENFORCEMENT_NOTICES: dict[ActionKind, EmailTemplate] = {
    ActionKind.RESTRICT_APP: EmailTemplate.APP_RESTRICTED,
    ActionKind.REVOKE_TOKEN: EmailTemplate.TOKEN_REVOKED,
    ActionKind.BAN_APP: EmailTemplate.APP_BANNED,
    ActionKind.SUSPEND_ACCOUNT: EmailTemplate.ACCOUNT_SUSPENDED,
}

TERMINAL = frozenset({S.DISMISSED, S.RESOLVED, S.CLOSED})


# each operation as the object of "cannot ... a case", for messages a lead reads
OP_WORDS: dict[Op, str] = {
    Op.OPEN: "open",
    Op.CONFIRM: "confirm",
    Op.DISMISS: "dismiss",
    Op.SEND_OUTREACH: "send the outreach for",
    Op.REQUEST_CHANGES: "request changes on",
    Op.REPORT_COMPLIANCE: "report compliance on",
    Op.REJECT_COMPLIANCE: "reject the compliance report on",
    Op.RESOLVE: "resolve",
    Op.ESCALATE: "escalate",
    Op.APPROVE_URGENT: "approve an urgent enforcement on",
    Op.DECLINE_ENFORCEMENT: "decline the enforcement of",
    Op.ENFORCE: "enforce",
    Op.SUBMIT_APPEAL: "submit an appeal on",
    Op.UPHOLD: "uphold the enforcement of",
    Op.OVERTURN: "overturn the enforcement of",
    Op.CLOSE: "close",
    Op.EVIDENCE_REFRESHED: "add evidence to",
    Op.NOTICE_DELIVERED: "record a delivered notice on",
    Op.DELIVERY_FAILED: "record a failed delivery on",
    Op.DELIVERY_UNBLOCKED: "unblock the delivery of",
    Op.DELIVERY_UNCERTAIN: "record an uncertain delivery on",
    Op.DELIVERY_RESOLVED: "settle a delivery on",
    Op.DELIVERY_DEFERRED: "record a deferred delivery on",
    Op.SPAM_REPORTED: "record a spam report on",
    Op.REMINDER_SENT: "send a reminder on",
    Op.EXTEND: "extend the deadline of",
    Op.REQUEST_EXTENSION: "request an extension on",
    Op.DECLINE_EXTENSION: "decline the extension request on",
    Op.ACKNOWLEDGE: "acknowledge the request on",
    Op.APPROVE_ENFORCEMENT: "approve the enforcement of",
    Op.ASSIGN: "assign",
    Op.ACTIONS_APPLIED: "record more applied actions on",
}


def _refusal(op: Op, status: CaseStatus, allowed: frozenset[CaseStatus]) -> str:
    """``cannot submit an appeal on a case that is appealed; possible when it is enforced``."""
    names = sorted(s.value for s in allowed)
    when = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return f"cannot {OP_WORDS[op]} a case that is {status.value}; possible when it is {when}"


def allowed_targets(status: CaseStatus) -> frozenset[CaseStatus]:
    """Every status reachable from ``status`` in one transition."""
    return frozenset(spec.target for spec in TRANSITIONS.values() if status in spec.sources)


def check_transition(op: Op, status: CaseStatus) -> TransitionSpec:
    """The spec of ``op`` from ``status``, or :class:`TransitionNotAllowed` with the reason."""
    spec = TRANSITIONS.get(op)
    if spec is None:
        raise TransitionNotAllowed(f"{op.value} is not a status transition")
    if status not in spec.sources:
        raise TransitionNotAllowed(_refusal(op, status, spec.sources))
    return spec


def check_event(op: Op, status: CaseStatus) -> EventSpec:
    """The spec of event ``op`` in ``status``, or :class:`TransitionNotAllowed`."""
    spec = EVENTS.get(op)
    if spec is None:
        raise TransitionNotAllowed(f"{op.value} is not an event")
    if status not in spec.allowed_in:
        raise TransitionNotAllowed(_refusal(op, status, spec.allowed_in))
    return spec
