"""Errors a user can act on; the CLI maps each family to an exit code."""

from __future__ import annotations


class CasewardError(Exception):
    """Base of every error Caseward reports to a user.

    ``exit_code`` follows the CLI contract: 2 for bad usage (unknown id, illegal
    move, malformed argument), 1 for a failure of the operation itself.
    """

    exit_code = 1


class UsageError(CasewardError):
    """The request itself is wrong; nothing was changed."""

    exit_code = 2


class ConfigError(UsageError):
    """The configuration (``caseward.toml``, ``CASEWARD_*``) is wrong; nothing was run."""


class NotFound(UsageError):
    """An id names nothing."""


class InvalidInput(UsageError):
    """An argument or input value is malformed."""


class TransitionNotAllowed(UsageError):
    """A case cannot make the requested move from its current status."""


class GuardFailed(UsageError):
    """A fairness guard refused the move (evidence, notice, deadline, reviewer)."""


class PlatformError(CasewardError):
    """The platform adapter could not apply or reverse an action."""


class PlatformRefused(PlatformError):
    """The platform answered that it will not apply this action (a 4xx): retrying as it is
    will not help."""


class PlatformUnavailable(PlatformError):
    """The platform could not be reached or failed (5xx, timeouts) after every retry."""
