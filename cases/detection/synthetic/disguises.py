"""Disguised duplicates for the synthetic platform: copies of an app that only read the same.

A party hiding duplicate apps gives each copy a name spelled with look-alike characters
(``Hоllowvess3l404`` beside ``Hollowvessel404``: Cyrillic or Greek letters, digits, ``$`` and
``@`` for letters, accents, full-width letters, invisible characters, other spacing and
punctuation), a paraphrased description and a website of its own, so that nothing but the
name as a person reads it links the copies. :func:`plant` adds one group per disguise, and
the honest look-alikes that must stay clean: similar names of unrelated accounts, generic
names in disguise, and dev/staging/prod sets labelled in other styles (``[DEV] Base``,
``Base – Production``) whose descriptions name the environment.

The synthetic platform generator calls :func:`plant` for each thousand apps when asked for
a disguised platform; ``tests/test_detection_precision.py`` measures detection on it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol


class Planter(Protocol):
    """What the platform generator offers a scenario: accounts, apps and the ground truth."""

    rng: random.Random
    truth: dict[str, list[list[str]]]
    decoys: dict[str, list[list[str]]]

    def brand(self) -> str: ...

    def dev(self, *links: str) -> str: ...

    def link_value(self, kind: str) -> str: ...

    def app(self, dev: str, name: str, desc: str = "", site: str = "", cbs: str = "") -> str: ...

    def mark(self, bucket: dict[str, list[list[str]]], key: str, apps: list[str]) -> None: ...


CYRILLIC = dict(zip("aceopxyABCEHKMOPTX", "асеорхуАВСЕНКМОРТХ", strict=True))
GREEK = dict(zip("oivABEHIKMNOPTXYZ", "οινΑΒΕΗΙΚΜΝΟΡΤΧΥΖ", strict=True))
DIGITS = {
    "o": "0",
    "O": "0",
    "l": "1",
    "i": "1",
    "I": "1",
    "e": "3",
    "E": "3",
    "a": "4",
    "s": "5",
    "S": "5",
    "t": "7",
}
SYMBOLS = {"s": "$", "S": "$", "a": "@", "A": "@"}
ACCENTS = dict(zip("aeiouncAEIOU", "áéíóúñçÀÉÎÖÜ", strict=True))


def _swap(table: dict[str, str], count: int) -> Callable[[str, random.Random], str]:
    """Replace ``count`` (or as many as there are) letters of a name by look-alikes."""

    def disguise(name: str, rng: random.Random) -> str:
        spots = [i for i, ch in enumerate(name) if ch in table]
        chosen = set(rng.sample(spots, min(count, len(spots))))
        return "".join(table[ch] if i in chosen else ch for i, ch in enumerate(name))

    return disguise


def _fullwidth(name: str, _rng: random.Random) -> str:
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in name)


def _invisible(name: str, rng: random.Random) -> str:
    cut = rng.randrange(1, len(name))
    return name[:cut] + "\u200b" + name[cut:] + "\u00ad"


def _spacing(name: str, rng: random.Random) -> str:
    """Other case, spacing and punctuation: ``Hollowvessel404`` -> ``HOLLOW-vessel 404``."""
    letters = name.rstrip("0123456789 ")
    digits = name[len(letters) :].strip()
    cut = rng.randrange(2, len(letters) - 1)
    head, tail = letters[:cut].upper(), letters[cut:].lower()
    return f"{head}{rng.choice(['-', '.', '_', ' '])}{tail} {digits}".strip()


def _mixed(name: str, rng: random.Random) -> str:
    """The issue's example: a Cyrillic letter and a digit for a letter."""
    return _swap(DIGITS, 1)(_swap(CYRILLIC, 1)(name, rng), rng)


DISGUISES: dict[str, Callable[[str, random.Random], str]] = {
    "cyrillic": _swap(CYRILLIC, 3),
    "greek": _swap(GREEK, 2),
    "digits": _swap(DIGITS, 3),
    "symbols": _swap(SYMBOLS, 2),
    "accents": _swap(ACCENTS, 3),
    "fullwidth": _fullwidth,
    "invisible": _invisible,
    "spacing": _spacing,
    "mixed": _mixed,
}

WORDS = (
    "hollow",
    "vessel",
    "lantern",
    "harbor",
    "ember",
    "willow",
    "copper",
    "falcon",
    "meadow",
    "summit",
    "raven",
    "cobalt",
    "thistle",
    "marble",
    "orchard",
    "beacon",
)
USES = (
    ("schedule", "posts"),
    ("track", "mentions"),
    ("collect", "photos"),
    ("answer", "messages"),
    ("share", "playlists"),
    ("archive", "threads"),
)
# one use case told three ways: no two share enough words to read as copies
PARAPHRASES = (
    "Helps you {verb} {obj} without opening the site every hour.",
    "A small service for people who want their {obj} handled for them: it can {verb} them.",
    "{Verb} {obj} automatically, on a timetable you choose once.",
)


def _base_name(p: Planter) -> str:
    """``Hollowvessel404`` or ``Zuna Meadow Sync``: names worth copying."""
    rng = p.rng
    if rng.random() < 0.5:
        first, second = rng.sample(WORDS, 2)
        return f"{first.capitalize()}{second}{rng.randint(10, 999)}"
    return f"{p.brand()} {rng.choice(WORDS).capitalize()} {rng.choice(['Sync', 'Desk', 'Pilot'])}"


def _descriptions(p: Planter) -> list[str]:
    verb, obj = p.rng.choice(USES)
    texts = [t.format(verb=verb, Verb=verb.capitalize(), obj=obj) for t in PARAPHRASES]
    p.rng.shuffle(texts)
    return texts


def _site(p: Planter) -> str:
    return f"https://{p.brand().lower()}{p.rng.choice(['.io', '.app', '.net', '.co'])}"


def _disguised_group(p: Planter, disguise: Callable[[str, random.Random], str]) -> None:
    """An app and one or two disguised copies, on one account or on linked accounts."""
    rng = p.rng
    name = _base_name(p)
    copies = rng.choice([1, 2])
    if rng.random() < 0.35:
        link = p.link_value(rng.choice(["payment", "device", "phone", "ip"]))
        owners = [p.dev(link) for _ in range(copies + 1)]
    else:
        owners = [p.dev()] * (copies + 1)
    names = [name] + [disguise(name, rng) for _ in range(copies)]
    apps = []
    for owner, spelled, desc in zip(owners, names, _descriptions(p), strict=False):
        site = _site(p)
        apps.append(p.app(owner, spelled, desc, site, f"{site}/oauth/callback"))
    p.mark(p.truth, "duplicate_apps", apps)


def _decoys(p: Planter) -> None:
    rng = p.rng
    name = _base_name(p)
    apps = [
        p.app(p.dev(), spelled, desc, _site(p))
        for spelled, desc in zip(
            [name, DISGUISES["mixed"](name, rng), DISGUISES["digits"](name, rng)],
            _descriptions(p),
            strict=True,
        )
    ]
    p.mark(p.decoys, "disguised_names_of_unrelated_accounts", apps)
    dev = p.dev()
    apps = [
        p.app(dev, "T3st App", "trying the API out"),
        p.app(dev, "Tеst Аpp 2", ""),  # Cyrillic е and А
        p.app(dev, "My B0t", "my bot"),
    ]
    p.mark(p.decoys, "disguised_generic_names", apps)
    base, dev = p.brand(), p.dev()
    host = f"{base.lower()}{rng.choice(['.io', '.app'])}"
    styles = rng.choice(
        [
            (f"[DEV] {base}", f"{base} (staging)", f"{base} – Production"),
            (f"{base}-dev", f"{base} STAGING", f"{base} | prod"),
        ]
    )
    descriptions = (
        f"Development build of {base}, for our own testing.",
        f"Staging deployment of {base} where releases are checked.",
        f"Production instance of {base} that our users sign in to.",
    )
    apps = [
        p.app(dev, label_name, desc, f"https://{sub}.{host}", f"https://{sub}.{host}/cb")
        for label_name, desc, sub in zip(
            styles, descriptions, ("dev", "staging", "www"), strict=True
        )
    ]
    p.mark(p.decoys, "environment_labels_in_other_styles", apps)


def plant(p: Planter) -> None:
    """One disguised duplicate group per disguise, then the honest look-alikes."""
    for disguise in DISGUISES.values():
        _disguised_group(p, disguise)
    _decoys(p)
