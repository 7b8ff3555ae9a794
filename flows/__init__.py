"""Prefect orchestration of Caseward: one module per deployable flow, thin over ``cases``.

Flows only sequence tasks; every rule lives in ``cases``. Tasks take ids and primitives, open
their own unit of work (``cases.core.db.unit_of_work``) and return plain data.
"""
