"""Names compared as a person reads them: the skeleton, each disguise it sees through, and the
honest look-alikes that must stay clean (issue 14)."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cases.core.settings import DetectionSettings
from cases.detection.finding import Finding
from cases.detection.run import detect_findings
from cases.detection.skeleton import LOOKUP, register_lookup, skeleton, skeleton_sql
from cases.detection.snapshot import open_snapshot
from cases.detection.synthetic.disguises import DISGUISES
from tests.detection_fixtures import SnapshotBuilder

SETTINGS = DetectionSettings()
CON = duckdb.connect()  # one in-memory database for the SQL skeletons of every example


def duplicates(builder: SnapshotBuilder, tmp_path: Path) -> list[Finding]:
    with open_snapshot(builder.write(tmp_path / "snap")) as snap:
        findings = detect_findings(snap, SETTINGS)
    return [f for f in findings if f.policy.value == "duplicate_apps"]


def sql_skeletons(texts: list[str]) -> list[str]:
    con = CON
    con.register("texts", pa.table({"i": range(len(texts)), "t": pa.array(texts, pa.string())}))
    register_lookup(con, "SELECT t FROM texts")
    rows = con.execute(
        f"SELECT {skeleton_sql('t', 'k.skeleton')} FROM texts "
        f"LEFT JOIN {LOOKUP} k ON k.text = t ORDER BY i"
    ).fetchall()
    return [str(r[0]) for r in rows]


# -- the skeleton ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelled", "read"),
    [
        ("Hоllowvess3l404", "hollowvesselaoa"),  # Cyrillic о, 3 for e (the example)
        ("Hollowvessel404", "hollowvesselaoa"),
        ("ΗοllοwVessel", "hollowvessel"),  # Greek Eta and omicrons
        ("$pam B0t", "spam bot"),
        ("Tr@ck 1t", "track lt"),
        ("Hôllöwvéssel", "hollowvessel"),  # accents
        ("Ｈｏｌｌｏｗ", "hollow"),  # full-width
        ("𝐇𝐨𝐥𝐥𝐨𝐰", "hollow"),  # mathematical bold
        ("Hol\u200blow\u00ad", "hollow"),  # zero-width space, soft hyphen
        ("ﬁnder", "flnder"),  # ligature; i and l are one letter
        ("Iight light 1ight", "llght llght llght"),
        ("Corner vvave", "comer wave"),
        ("Søren Łódź €", "soren lodz e"),
        ("[DEV] Base – Production", "[dev] base – productlon"),  # punctuation is left
    ],
)
def test_skeleton_folds_what_reads_alike(spelled: str, read: str) -> None:
    assert skeleton(spelled) == read
    assert sql_skeletons([spelled]) == [read]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=20))
def test_sql_and_python_skeletons_agree(texts: list[str]) -> None:
    texts = [t.replace("\x00", "") for t in texts]
    assert sql_skeletons(texts) == [skeleton(t) for t in texts]


def test_every_generated_disguise_reads_as_the_original() -> None:
    rng = random.Random(3)
    for name in ("Hollowvessel404", "Zuna Meadow Sync"):
        for style, disguise in DISGUISES.items():
            spelled = disguise(name, rng)
            assert spelled != name, style
            # word breaks may move (spacing), the letters may not
            assert skeleton(spelled).replace(" ", "").replace("-", "").replace(".", "").replace(
                "_", ""
            ) == skeleton(name).replace(" ", ""), (style, spelled)


# -- the detector sees through each disguise -----------------------------------------------


@pytest.mark.parametrize(
    "copy",
    [
        "Hоllowvess3l404",  # Cyrillic о and a digit
        "Ηοllοwvessel404",  # Greek
        "H0110wv355el404",  # digits
        "Ho11owve$$el404",  # symbols
        "Hóllówvéssél404",  # accents
        "Ｈｏｌｌｏｗｖｅｓｓｅｌ４０４",  # full-width
        "Hollow\u200bvessel404",  # invisible
        "HOLLOW-vessel 404",  # case, punctuation, spacing
    ],
)
def test_disguised_copy_of_one_account(tmp_path: Path, copy: str) -> None:
    b = SnapshotBuilder().developer("d1")
    b.app("a1", "d1", "Hollowvessel404", "Schedules posts at the best time", "https://hv.io")
    b.app("a2", "d1", copy, "A tool that queues your updates for you", "https://hv2.app")
    [finding] = duplicates(b, tmp_path)
    assert finding.app_ids == ["a1", "a2"]
    # the evidence shows both spellings and the skeletons that matched
    assert [a["name"] for a in finding.evidence["apps"]] == ["Hollowvessel404", copy]
    [link] = finding.evidence["links"]
    assert link["name_similarity"] >= SETTINGS.duplicate_name_similarity
    assert link["name_skeletons"][0] == "hollowvesselaoa"
    assert [a["name_skeleton"] for a in finding.evidence["apps"]] == link["name_skeletons"]


def test_disguised_copies_across_linked_accounts(tmp_path: Path) -> None:
    b = SnapshotBuilder().developer("d1").developer("d2").developer("d3")
    b.link("d1", "payment", "card-1").link("d2", "payment", "card-1")
    b.app("a1", "d1", "Zuna Meadow Sync", "Keeps your photo albums in order")
    b.app("a2", "d2", "Zunа Mеadow Synс", "Sorts pictures into albums each night")  # Cyrillic
    b.app("a3", "d3", "Zunа Mеadow Synс", "unrelated account, same spelling")
    [finding] = duplicates(b, tmp_path)
    assert finding.app_ids == ["a1", "a2"] and finding.developer_ids == ["d1", "d2"]


def test_disguised_description_is_read_too(tmp_path: Path) -> None:
    b = SnapshotBuilder().developer("d1")
    text = "Automatically follows back everyone who follows your brand account"
    b.app("a1", "d1", "Followr", text)
    b.app("a2", "d1", "Amigo", text.replace("o", "о").replace("e", "3"))
    [finding] = duplicates(b, tmp_path)
    assert finding.evidence["links"][0]["description_similarity"] == 1.0


# -- honest look-alikes stay clean ----------------------------------------------------------


def test_disguised_names_of_unrelated_accounts(tmp_path: Path) -> None:
    b = SnapshotBuilder()
    for i, name in enumerate(["Hollowvessel404", "Hоllowvess3l404", "H0llowvessel404"]):
        b.developer(f"d{i}").app(f"a{i}", f"d{i}", name, "", f"https://site{i}.io")
    assert duplicates(b, tmp_path) == []


def test_generic_names_in_disguise(tmp_path: Path) -> None:
    b = SnapshotBuilder().developer("d1")
    b.app("a1", "d1", "T3st App", "trying the API out")
    b.app("a2", "d1", "Tеst Аpp 2", "")  # Cyrillic е and А
    b.app("a3", "d1", "My B0t", "my bot")
    assert duplicates(b, tmp_path) == []


@pytest.mark.parametrize(
    "names",
    [
        ("[DEV] Base", "Base (staging)", "Base – Production"),
        ("Base-dev", "Base STAGING", "Base | prod"),
        ("base_development", "Base: Stage", "BASE PROD"),
    ],
)
def test_environment_labels_in_other_styles(tmp_path: Path, names: tuple[str, ...]) -> None:
    b = SnapshotBuilder().developer("d1")
    descriptions = (
        "Development build of Base, for our own testing.",
        "Staging deployment of Base where releases are checked.",
        "Production instance of Base that our users sign in to.",
    )
    for i, (name, desc) in enumerate(zip(names, descriptions, strict=True)):
        b.app(f"a{i}", "d1", name, desc, "https://base.io")
    assert duplicates(b, tmp_path) == []


def test_environment_label_missing_from_a_description_is_still_a_violation(
    tmp_path: Path,
) -> None:
    b = SnapshotBuilder().developer("d1")
    b.app("a1", "d1", "[DEV] Base", "Development build of Base")
    b.app("a2", "d1", "Base – Production", "The Base app our users sign in to")
    [finding] = duplicates(b, tmp_path)
    assert "not labelled" in finding.evidence["exception"]
