"""Imports go one way: caseward (entry points) → flows (orchestration) → cases (domain).

Run in a fresh interpreter, so that nothing another test imported hides an import.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

IMPORT_EVERY_MODULE = """
import importlib, json, pkgutil, sys
import {package}
names = sorted(m.name for m in pkgutil.walk_packages({package}.__path__, "{package}."))
for name in names:
    importlib.import_module(name)
print(json.dumps({{"modules": names, "loaded": sorted(sys.modules)}}))
"""


def _import_all(package: str) -> tuple[list[str], set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_MODULE.format(package=package)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    return result["modules"], set(result["loaded"])


def _top_level(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


def test_the_domain_imports_neither_prefect_nor_flows_nor_the_entry_points() -> None:
    modules, loaded = _import_all("cases")
    assert len(modules) > 40  # every module of every domain package was imported
    assert not _top_level(loaded) & {"prefect", "flows", "caseward"}


def test_flows_import_no_entry_point() -> None:
    modules, loaded = _import_all("flows")
    assert "flows.advance" in modules
    assert "caseward" not in _top_level(loaded)
