"""The ``caseward`` command line: one module per command group."""

from __future__ import annotations

from caseward.cli.main import app, main

__all__ = ["app", "main"]
