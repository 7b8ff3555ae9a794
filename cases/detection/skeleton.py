"""Names as a person reads them: the skeleton that duplicate detection compares.

Someone hiding a copy of an app writes its name with look-alike characters
(``Hоllowvess3l404``: a Cyrillic ``о``, a ``3`` for an ``e``) so that no string comparison
matches the original ``Hollowvessel404``. The skeleton folds every such spelling to one
form before similarity is measured:

1. Text with any non-ASCII character is decomposed (NFKD: full-width and mathematical
   letters, ligatures, accents split from their letters), accents and invisible format
   characters (zero-width spaces, joiners, soft hyphens) are dropped, letters with strokes
   and a few currency signs become their letter (``STROKES``), and each character
   that Unicode's confusables data (UTS #39, as shipped by the ``confusable-homoglyphs``
   package) lists as a look-alike of an ASCII letter or digit becomes that letter or digit
   (Cyrillic ``о`` -> ``o``, Greek ``Ν`` -> ``N``, ``ꓲ`` -> ``l``).
2. Everything is lower-cased.
3. ``ASCII_FOLDS`` (below) maps the digits and symbols people type for letters, and the
   letter pairs that read as one letter, to that letter. ``i`` and ``l`` become one letter
   (``l``) because ``1``, ``I`` and ``l`` all stand for both. ``|`` is not folded: it is
   more often a separator (``Base | Prod``) than a letter.

Punctuation and spaces are left for the tokenizer, which treats them as word breaks. The
skeleton is a comparison key, not a spelling: ``Hollowvessel404`` reads ``hollowvesselaoa``.

The same fold runs in Python (:func:`skeleton`) and in DuckDB (:func:`skeleton_sql`): ASCII
text, the vast majority, is folded by SQL ``replace`` calls; the distinct texts with
non-ASCII characters are folded by the Python function once and joined from a lookup table
(:func:`register_lookup`).
"""

from __future__ import annotations

import unicodedata
from functools import cache

import duckdb
import pyarrow as pa
from confusable_homoglyphs.confusables import confusables_data

from cases.detection.checks import q

# After lower-casing, in this order: characters first, then letter pairs.
ASCII_FOLDS: tuple[tuple[str, str], ...] = (
    ("0", "o"),
    ("1", "l"),
    ("i", "l"),
    ("3", "e"),
    ("4", "a"),
    ("@", "a"),
    ("5", "s"),
    ("$", "s"),
    ("7", "t"),
    ("rn", "m"),
    ("vv", "w"),
)

# Letters and symbols read as an ASCII letter that neither NFKD nor the confusables data folds.
STROKES: dict[str, str] = {
    "ø": "o",
    "Ø": "O",
    "đ": "d",
    "Đ": "D",
    "ð": "d",
    "ł": "l",
    "Ł": "L",
    "ħ": "h",
    "ß": "ss",
    "€": "E",
    "¢": "c",
    "¥": "Y",
}

LOOKUP = "skeletons"
DROPPED_CATEGORIES = frozenset({"Mn", "Me", "Cf"})  # accents, enclosing marks, invisibles


class _Fold(dict[int, str | None]):
    """``str.translate`` table built on first sight of each code point."""

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        value: str | None = char
        if code < 128:
            pass  # ASCII is ASCII_FOLDS' job, the same for every text
        elif unicodedata.category(char) in DROPPED_CATEGORIES:
            value = None
        elif char in STROKES:
            value = STROKES[char]
        else:
            for entry in confusables_data.get(char, ()):
                target = str(entry["c"]).replace("\u200e", "")  # drop the LTR marks
                if target.isascii() and target.isalnum():
                    value = target
                    break
        self[code] = value
        return value


@cache
def _fold_table() -> _Fold:
    return _Fold()


def _ascii_folds(text: str) -> str:
    for old, new in ASCII_FOLDS:
        text = text.replace(old, new)
    return text


def skeleton(text: str) -> str:
    """The comparison key of ``text`` (see the module docstring)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).translate(_fold_table())
    return _ascii_folds(text.lower())


def register_lookup(con: duckdb.DuckDBPyConnection, texts_sql: str) -> None:
    """Register the view ``skeletons(text, skeleton)`` for the non-ASCII texts of ``texts_sql``.

    ``texts_sql`` selects one text column; only its distinct values with a non-ASCII
    character (rare) are folded here, in Python, so that :func:`skeleton_sql` can join them.
    """
    rows = con.execute(
        f"SELECT DISTINCT t FROM ({texts_sql}) AS s(t) WHERE strlen(t) <> length(t)"
    ).fetchall()
    texts = [str(text) for (text,) in rows]
    con.register(
        LOOKUP,
        pa.table(
            {"text": texts, "skeleton": [skeleton(t) for t in texts]},
            schema=pa.schema([("text", pa.string()), ("skeleton", pa.string())]),
        ),
    )


def skeleton_sql(expr: str, folded: str) -> str:
    """SQL for the skeleton of the text ``expr``, equal to :func:`skeleton`; ``folded`` is
    the ``skeleton`` column of :data:`LOOKUP` joined on ``text = expr``."""
    ascii_text = f"lower({expr})"
    for old, new in ASCII_FOLDS:
        ascii_text = f"replace({ascii_text}, {q(old)}, {q(new)})"
    return f"coalesce({folded}, {ascii_text})"
