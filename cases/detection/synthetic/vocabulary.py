"""Words the synthetic platform is made of: background names and descriptions, brand syllables."""

from __future__ import annotations

from datetime import UTC, datetime

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _words(text: str) -> list[str]:
    return text.split()


ADJ = _words(
    "amber azure bold brave bright calm clever cosmic crisp daily deep eager early epic fair "
    "fast fresh gentle global golden grand happy honest jolly keen kind lively lucky lunar "
    "magic merry mighty modern neat noble open prime proud quick quiet rapid ready royal "
    "rustic sharp shiny silent simple smart solar solid sonic spicy steady sunny super swift "
    "tidy tiny urban vivid warm wild wise"
)
NOUN = _words(
    "anchor atlas badger beacon bison bridge canyon cedar comet compass coral crane delta "
    "ember falcon fern fjord forge garden glacier harbor hawk heron island jungle kernel "
    "lagoon lantern lotus maple meadow meteor nebula oasis orbit otter panda pebble pepper "
    "pixel planet prairie quartz raven reef river rocket saddle sequoia signal spruce summit "
    "tiger timber tundra valley walrus willow acorn bamboo cobalt dune geyser hollow"
)
VERB = _words("organise track share plan measure publish archive schedule review translate")
OBJ = _words("photos recipes workouts budgets notes playlists bookmarks invoices trips lessons")
SYL = _words("ka lo mi ra zu te vo ni sa de po lu fi ga re to ba ne xi mo")
TEMPLATES = (
    "'Helps small teams ' || verb || ' their ' || obj || ' every day.'",
    "'A ' || lower(noun) || ' companion for people who like to ' || verb || ' ' || obj",
    "'Open source tool that can ' || verb || ' your ' || obj || ' automatically.'",
)


def timestamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
