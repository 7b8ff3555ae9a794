"""Caseward's entry points and wiring: the ``caseward`` command, ``caseward serve`` and the
demo. The only package that imports both ``flows`` (orchestration) and ``cases`` (domain)."""
