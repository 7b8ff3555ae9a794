"""Caseward: enforcement case manager for developer API platforms."""
