"""Developer-controlled text made inert for a terminal or a header line.

An app name can carry terminal escape sequences (ESC, CSI) that recolour or rewrite an
operator's screen, and bidi overrides (U+202E...) that make text read differently from what
it is. Wherever Caseward shows such text outside JSON (the CLI's output, e-mail subjects),
these characters are replaced.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, and C1 controls (0x9b is a one-byte CSI)
CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f"
# the bidi embeddings, overrides, isolates and marks, and the line/paragraph separators
BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_UNSAFE = re.compile(f"[{CONTROLS}{BIDI}]")
REPLACEMENT = "\ufffd"


def inert(text: str) -> str:
    """``text`` with every control and bidi character shown as U+FFFD (tab and newline kept)."""
    return _UNSAFE.sub(REPLACEMENT, text)
