"""Leads' work at platform scale: decisions on many cases at once, triage rules that decide
for the leads, the work queue and its service-level targets, and the figures of that work."""
