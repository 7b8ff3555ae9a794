"""A synthetic platform snapshot with planted violations and look-alikes: detection's test and
demo data (``caseward demo-data``, ``make demo``, the precision tests and the benchmarks)."""

from cases.detection.synthetic.generate import generate

__all__ = ["generate"]
