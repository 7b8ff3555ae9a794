"""Caseward's domain: plain, typed functions over SQLAlchemy models, by concern.

``core`` (settings, models, database), ``lifecycle`` (the state machine and what moves a case),
``enforcement`` (catalogue, planning, platform adapters, appeals), ``email`` (what developers
receive and its delivery) and ``detection`` (snapshots to cases). Nothing here imports
Prefect, ``flows`` or ``caseward``.
"""
