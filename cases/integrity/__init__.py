"""The invariants a Caseward database keeps, checked on demand (``caseward doctor``).

Operators run the checks after an incident; the fault-injection tests run them after every
scenario. Each check is a read-only, set-based query (the event replay streams the log case
by case), so a database of tens of thousands of cases is checked in seconds.
"""

from cases.integrity.checks import CHECKS, DoctorReport, Violation, run_checks

__all__ = ["CHECKS", "DoctorReport", "Violation", "run_checks"]
