"""What an import reports when a snapshot breaks the contract of docs/platform-data.md."""

from __future__ import annotations

from dataclasses import dataclass

from cases.core.errors import CasewardError


@dataclass(frozen=True, order=True)
class Problem:
    """One violation of the input contract, located in its file.

    ``line`` is the physical line of a CSV file (the header is line 1) or the 1-based row of
    a Parquet file; 0 means the file as a whole. ``column`` is the column's name, or ``-``.
    """

    file: str
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class ImportFailed(CasewardError):
    """The snapshot is invalid; nothing was imported. Carries every problem found (capped)."""

    exit_code = 1

    def __init__(self, problems: list[Problem], total: int) -> None:
        self.problems = problems
        self.total = total
        shown = f", first {len(problems)} listed" if total > len(problems) else ""
        super().__init__(f"snapshot rejected: {total} problem(s){shown}; nothing was imported")
