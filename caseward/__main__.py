"""``python -m caseward``: the same as the ``caseward`` command."""

from caseward.cli import main

main()
