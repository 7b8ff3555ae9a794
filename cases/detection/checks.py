"""SQL that checks and types one column of the input contract, for text or Parquet sources.

CSV columns arrive as text and are checked with regular expressions and ``try_cast``.
Parquet columns that already carry a native type (timestamps, integers) are taken as they
are: a native timestamp cannot be malformed and a native integer only needs its sign
checked, so a large Parquet export is never turned into text and parsed back.
"""

from __future__ import annotations

from cases.detection.contract import Column, Kind


def q(value: str) -> str:
    """An SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    """An SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


# a UTC offset is at most 18 hours either way (as ISO 8601 profiles and java.time allow)
OFFSET_RE = r"(Z|z|[+-](0\d|1[0-7])(:?[0-5]\d)?|[+-]18(:?00)?)"
TS_RE = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?\s*" + OFFSET_RE
# what the e-mail backends deliver to: an ASCII dot-atom at a domain of DNS labels (an
# internationalised domain is written in punycode); special-use domains receive nothing
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_RE = rf"{_ATOM}(\.{_ATOM})*@({_LABEL}\.)+{_LABEL}"
SPECIAL_USE_RE = r"(?i).*\.(arpa|invalid|local|localhost|onion|test)"
URL_RE = r"(?i)https?://([a-z0-9._~%!$&'()*+,;=:-]*@)?([a-z0-9-]+(\.[a-z0-9-]+)*\.?|\[[0-9a-f:.]+\])(:\d{1,5})?([/?#]\S*)?"
# a callback URL, or the literal oob (OAuth 1.0a out-of-band): a placeholder naming no service
CALLBACK_RE = r"(oob|[A-Za-z][A-Za-z0-9+.\-]*://\S+)"
MAX_RATE_LIMIT = 2**31 - 1  # the registry stores it in a 32-bit integer column


def check(
    col: Column, native: str | None = None, max_chars: int = 10_000
) -> tuple[str, str] | None:
    """(predicate that is true for a bad value, SQL expression of its message).

    A text value is also checked for NUL bytes (no database stores them) and for its size:
    the registry column's, and at most ``max_chars`` (``detection.max_field_chars``).
    """
    found = _kind_check(col, native)
    if native is not None:
        return found
    v = ident(col.name)
    limit = min(col.max_chars or max_chars, max_chars)
    nul = f"(strpos({v}, chr(0)) > 0)"
    long = f"(length({v}) > {limit})"
    kind_bad, kind_msg = found if found is not None else ("false", "''")
    message = (
        f"CASE WHEN {nul} THEN 'contains a NUL byte' "
        f"WHEN {long} THEN 'is longer than {limit:,} characters (got ' || "
        f"format('{{:,}}', length({v})) || ')' ELSE {kind_msg} END"
    )
    return f"({kind_bad} OR coalesce({nul} OR {long}, false))", message


def _kind_check(col: Column, native: str | None) -> tuple[str, str] | None:
    v = ident(col.name)
    if native == "timestamp":
        return f"({v} IS NULL)", "'is empty: a timestamp is required'"
    if native == "integer":
        got = f"' (got ''' || coalesce({v}::VARCHAR, 'nothing') || ''')'"
        if col.kind is Kind.LIMIT:
            bad = f"({v} IS NOT NULL AND {v} NOT BETWEEN 1 AND {MAX_RATE_LIMIT})"
            return bad, f"'not an integer from 1 to {MAX_RATE_LIMIT:,}' || {got}"
        return f"({v} IS NULL OR {v} < 0)", f"'is negative: counts are integers >= 0' || {got}"
    shown = f"' (got ' || coalesce(''''||left({v}, 60)||'''', 'nothing') || ')'"
    match col.kind:
        case Kind.TEXT:
            return None
        case Kind.ID:
            empty = f"({v} IS NULL OR trim({v}) = '')"
            message = (
                f"CASE WHEN {empty} THEN 'is empty' "
                f"ELSE 'has spaces around it: ids are compared exactly' || {shown} END"
            )
            return f"({empty} OR {v} <> trim({v}))", message
        case Kind.REQUIRED_TEXT:
            return f"({v} IS NULL OR trim({v}) = '')", "'is empty'"
        case Kind.EMAIL:
            ascii_only = f"regexp_full_match(trim({v}), '[\\x21-\\x7e]*')"
            special = f"regexp_full_match(trim({v}), {q(SPECIAL_USE_RE)})"
            bad = f"({v} IS NULL OR NOT regexp_full_match(trim({v}), {q(EMAIL_RE)}) OR {special})"
            message = (
                f"CASE WHEN {v} IS NOT NULL AND NOT {ascii_only} THEN 'not an ASCII e-mail "
                "address: the e-mail backends deliver to ASCII addresses only (write an "
                f"internationalised domain in punycode, xn--...)' || {shown} "
                f"WHEN {v} IS NOT NULL AND {special} THEN 'at a special-use domain, which "
                f"receives no e-mail' || {shown} ELSE 'not an e-mail address' || {shown} END"
            )
            return bad, message
        case Kind.URL:
            bad = f"(trim({v}) <> '' AND NOT regexp_full_match(trim({v}), {q(URL_RE)}))"
            return bad, "'not an http(s) URL'" + " || " + shown
        case Kind.URLS:
            pattern = f"{CALLBACK_RE}( {CALLBACK_RE})*"
            bad = f"(trim({v}) <> '' AND NOT regexp_full_match({v}, {q(pattern)}))"
            return bad, "'not URLs separated by single spaces'" + " || " + shown
        case Kind.TIMESTAMP:
            bad = (
                f"({v} IS NULL OR NOT regexp_full_match(trim({v}), {q(TS_RE)})"
                f" OR try_cast(trim({v}) AS TIMESTAMPTZ) IS NULL)"
            )
            return bad, "'not an ISO 8601 timestamp with offset or Z'" + " || " + shown
        case Kind.COUNT:
            bad = f"({v} IS NULL OR NOT regexp_full_match(trim({v}), '\\d{{1,18}}'))"
            msg = (
                f"CASE WHEN regexp_full_match(trim({v}), '-\\d+') "
                f"THEN 'is negative: counts are integers >= 0' "
                f"ELSE 'not an integer >= 0' END || {shown}"
            )
            return bad, msg
        case Kind.LIMIT:
            bad = (
                f"(trim({v}) <> '' AND (NOT regexp_full_match(trim({v}), '\\d{{1,18}}')"
                f" OR try_cast(trim({v}) AS BIGINT) NOT BETWEEN 1 AND {MAX_RATE_LIMIT}))"
            )
            return bad, f"'not an integer from 1 to {MAX_RATE_LIMIT:,}' || {shown}"
        case Kind.ENUM:
            choices = ", ".join(q(c) for c in col.choices)
            bad = f"({v} IS NULL OR {v} NOT IN ({choices}))"
            return bad, f"'not one of {'/'.join(col.choices)}' || {shown}"
    raise AssertionError(col.kind)


def typed(col: Column, present: bool, native: str | None = None) -> str:
    """The typed projection of a raw column (NULL where invalid)."""
    v = ident(col.name)
    if not present:
        return f"NULL::BIGINT AS {v}"
    if native == "timestamp":
        return f"{v} AS {v}"
    if native == "integer":
        return f"CAST({v} AS BIGINT) AS {v}"
    match col.kind:
        case Kind.TIMESTAMP:
            return f"try_cast(trim({v}) AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS {v}"
        case Kind.COUNT | Kind.LIMIT:
            return f"try_cast(nullif(trim({v}), '') AS BIGINT) AS {v}"
        case Kind.TEXT | Kind.URL | Kind.URLS:
            return f"coalesce({v}, '') AS {v}"
        case Kind.EMAIL:
            return f"trim({v}) AS {v}"
        case _:
            return f"{v} AS {v}"


PARSED_KINDS = (Kind.TIMESTAMP, Kind.COUNT, Kind.LIMIT)


def parsed(col: Column, present: bool, native: str | None = None) -> bool:
    """Whether :func:`typed` parses the column's text (``try_cast``) rather than taking it."""
    return present and native is None and col.kind in PARSED_KINDS


INTEGER_TYPES = (
    "BIGINT",
    "INTEGER",
    "SMALLINT",
    "TINYINT",
    "UBIGINT",
    "UINTEGER",
    "USMALLINT",
    "UTINYINT",
)


def native_kind(col: Column, duck_type: str) -> str | None:
    """``timestamp`` or ``integer`` when a Parquet column already has the contract's type."""
    upper = duck_type.upper()
    if col.kind is Kind.TIMESTAMP and upper.startswith("TIMESTAMP"):
        return "timestamp"
    if col.kind in (Kind.COUNT, Kind.LIMIT) and upper in INTEGER_TYPES:
        return "integer"
    return None


def parquet_column(col: Column, duck_type: str) -> str:
    """A Parquet column as loaded: native timestamps (naive UTC) and integers, else text."""
    v = ident(col.name)
    native = native_kind(col, duck_type)
    if native == "timestamp":
        if duck_type.upper().startswith("TIMESTAMP WITH TIME ZONE"):
            return f"{v} AT TIME ZONE 'UTC' AS {v}"
        return f"CAST({v} AS TIMESTAMP) AS {v}"  # Parquet instants without a zone are UTC
    if native == "integer":
        return f"CAST({v} AS BIGINT) AS {v}"
    return f"CAST({v} AS VARCHAR) AS {v}"


def empty_column(col: Column) -> str:
    """A typed, empty column for a file that could not be loaded."""
    duck = {
        Kind.TIMESTAMP: "TIMESTAMP",
        Kind.COUNT: "BIGINT",
        Kind.LIMIT: "BIGINT",
    }.get(col.kind, "VARCHAR")
    return f"NULL::{duck} AS {ident(col.name)}"
