"""docs/platform-data.md is the data contract a platform exports to: it must match the code.

Every file and column the importer checks is documented, the documented example imports and
finds what the page says it finds, and every reference to the contract points at this page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cases.core.db import session_scope
from cases.core.settings import get_settings
from cases.detection.contract import FILES, LINK_TYPES, REPORT_REASONS
from cases.detection.run import run_detection
from caseward.cli.main import main
from tests.factories import T0

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "platform-data.md"


def _section(text: str, name: str) -> str:
    start = text.index(f"### `{name}`")
    end = text.find("\n### ", start + 1)
    return text[start : end if end > 0 else len(text)]


def test_every_file_and_column_of_the_contract_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for spec in FILES:
        section = _section(text, spec.name)
        for column in spec.column_names:
            assert f"| `{column}` |" in section, (spec.name, column)
    for word in (*REPORT_REASONS, *LINK_TYPES, "oob"):
        assert f"`{word}`" in text, word


def test_the_documented_example_imports_and_finds_what_the_page_says(
    engine: Engine, tmp_path: Path
) -> None:
    text = DOC.read_text(encoding="utf-8")
    examples = re.findall(r"`(\w+\.csv)`\n\n```csv\n(.*?)```", text, re.DOTALL)
    assert {name for name, _ in examples} == {f"{spec.name}.csv" for spec in FILES}
    for name, body in examples:
        (tmp_path / name).write_text(body, encoding="utf-8")
    with session_scope(engine) as session:
        report = run_detection(
            session, tmp_path, settings=get_settings().detection, actor="detector", now=T0
        )
    assert [(f.policy, f.app_ids, f.developer_ids) for f in report.findings] == [
        ("duplicate_apps", ["a-70", "a-71"], ["d-7", "d-8"])
    ]


@pytest.mark.parametrize(
    "path", ["README.md", *(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]
)
def test_references_point_at_the_page_in_the_repository(path: str) -> None:
    text = (ROOT / path).read_text(encoding="utf-8")
    assert "shared/docs" not in text


def test_detect_help_names_the_page(capsys: pytest.CaptureFixture[str]) -> None:
    main(["detect", "--help"])
    captured = capsys.readouterr()
    assert "docs/platform-data.md" in " ".join((captured.out + captured.err).split())
