"""Who acts: the identities Caseward's own steps use, and the operator as the system knows them.

Outside simulation an operator is who the operating system or the database says they are:
the login user of the process, or (``identity = "database"`` on PostgreSQL) the role the
session authenticated as. A typed name (``--actor``) is accepted only in simulation. The
system's own identities (``caseward``, ``detector``, ``rule:...``) are never an operator's.
"""

from __future__ import annotations

import os
import re

from sqlalchemy import Engine, text

from cases.core.errors import GuardFailed, InvalidInput

# the actors of steps Caseward takes on its own, and the prefixes of the ones it derives
SYSTEM_NAMES = frozenset({"caseward", "system", "detector", "outbox", "sweeper", "prefect"})
# a triage rule of the policy catalogue acts as ``rule:<name>``; statements of reasons count
# such a decision as automated
RULE_PREFIX = "rule:"
SYSTEM_PREFIXES = (RULE_PREFIX, "developer:", "system:", "flow:", "prefect:")

_NAME = re.compile(r"[\w.@+-]{1,100}")


def is_system_identity(name: str) -> bool:
    """Whether ``name`` is (or imitates, by case or spaces) one of the system's identities."""
    folded = name.strip().casefold()
    return folded in SYSTEM_NAMES or folded.startswith(SYSTEM_PREFIXES)


def rule_actor(name: str) -> str:
    """The actor of the triage rule ``name``."""
    return f"{RULE_PREFIX}{name}"


def is_rule(actor: str) -> bool:
    """Whether ``actor`` is a triage rule (only the system records one; no person can
    claim it, see :func:`claimable`)."""
    return actor.startswith(RULE_PREFIX)


def claimable(name: str, *, source: str) -> str:
    """``name`` as an operator's identity, or an error naming ``source`` and the rule."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"{source}: {name[:40]!r} is not a plain name (letters, digits, . _ @ + -, at most 100)"
        )
    if is_system_identity(name):
        raise GuardFailed(
            f"{source}: {name!r} is one of Caseward's system identities and cannot act "
            "from the command line"
        )
    return name


def login_user() -> str:
    """The operating-system user the process runs as (not ``$USER``, which anyone can set)."""
    try:
        import pwd
    except ImportError:  # pragma: no cover - non-POSIX systems
        import getpass

        return getpass.getuser()
    return pwd.getpwuid(os.geteuid()).pw_name


def database_role(engine: Engine) -> str:
    """The role the database session authenticated as (PostgreSQL ``current_user``)."""
    with engine.connect() as connection:
        return str(connection.scalar(text("SELECT current_user")))
