"""The input contract of docs/platform-data.md as data: files, columns and value kinds."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """How a column's text is checked and typed."""

    ID = "id"  # non-empty string
    TEXT = "text"  # any string, may be empty
    REQUIRED_TEXT = "required_text"  # non-empty string
    EMAIL = "email"
    URL = "url"  # empty or an http(s) URL
    URLS = "urls"  # empty or URLs separated by single spaces
    TIMESTAMP = "timestamp"  # ISO 8601 with offset or Z
    COUNT = "count"  # integer >= 0
    LIMIT = "limit"  # empty or integer >= 1
    ENUM = "enum"


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    choices: tuple[str, ...] = ()
    optional: bool = False  # the column itself may be absent
    max_chars: int | None = None  # the registry column's size (and detection.max_field_chars)


@dataclass(frozen=True)
class Reference:
    """``column`` of this file must name a row of ``target`` (its key column)."""

    column: str
    target: str
    target_column: str


@dataclass(frozen=True)
class FileSpec:
    name: str
    required: bool
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    references: tuple[Reference, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


REPORT_REASONS = ("spam", "abuse", "automation", "other")
LINK_TYPES = ("ip", "device", "payment", "phone")

FILES: tuple[FileSpec, ...] = (
    FileSpec(
        "developers",
        True,
        (
            Column("developer_id", Kind.ID, max_chars=200),
            Column("handle", Kind.REQUIRED_TEXT, max_chars=200),
            Column("email", Kind.EMAIL, max_chars=254),
            Column("created_at", Kind.TIMESTAMP),
        ),
        key=("developer_id",),
    ),
    FileSpec(
        "apps",
        True,
        (
            Column("app_id", Kind.ID, max_chars=200),
            Column("developer_id", Kind.ID, max_chars=200),
            Column("name", Kind.REQUIRED_TEXT, max_chars=500),
            Column("description", Kind.TEXT),
            Column("website", Kind.URL, max_chars=2000),
            Column("callback_urls", Kind.URLS),
            Column("created_at", Kind.TIMESTAMP),
            Column("rate_limit_per_hour", Kind.LIMIT, optional=True),
        ),
        key=("app_id",),
        references=(Reference("developer_id", "developers", "developer_id"),),
    ),
    FileSpec(
        "usage",
        True,
        (
            Column("app_id", Kind.ID),
            Column("hour", Kind.TIMESTAMP),
            Column("requests", Kind.COUNT),
            Column("rate_limited", Kind.COUNT),
            Column("posts", Kind.COUNT),
        ),
        key=("app_id", "hour"),
        references=(Reference("app_id", "apps", "app_id"),),
    ),
    FileSpec(
        "reports",
        True,
        (
            Column("report_id", Kind.ID),
            Column("app_id", Kind.ID),
            Column("reported_at", Kind.TIMESTAMP),
            Column("reason", Kind.ENUM, choices=REPORT_REASONS),
        ),
        key=("report_id",),
        references=(Reference("app_id", "apps", "app_id"),),
    ),
    FileSpec(
        "account_links",
        False,
        (
            Column("developer_id", Kind.ID),
            Column("link_type", Kind.ENUM, choices=LINK_TYPES),
            Column("value", Kind.REQUIRED_TEXT),
        ),
        references=(Reference("developer_id", "developers", "developer_id"),),
    ),
)

FILES_BY_NAME = {spec.name: spec for spec in FILES}
