"""Read a platform snapshot into DuckDB and check every value against the input contract.

The files are loaded as text (``all_varchar``) into an on-disk DuckDB database in a temporary
folder, so memory stays bounded by DuckDB's buffer pool whatever the size of the files.
Every check is one set-based query per file; a query that finds problems is re-run for the
first rows only, so reporting stays cheap. Problems carry the file, the physical line (CSV,
header = line 1; quoted newlines are counted) or row (Parquet), and the column.

When the snapshot is clean, typed tables ``developers``, ``apps``, ``usage``, ``reports`` and
``account_links`` (timestamps as naive UTC ``TIMESTAMP``) are left in the connection for the
detectors; otherwise :class:`ImportFailed` lists the problems and the folder is removed.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import duckdb

from cases.detection.contract import FILES, Column, FileSpec, Kind
from cases.detection.problems import ImportFailed, Problem

Progress = Callable[[str], None]

TS_RE = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?\s*(Z|z|[+-]\d{2}(:?\d{2})?)"
EMAIL_RE = r"[^@\s]+@[^@\s]+\.[^@\s.]+"
URL_RE = r"(?i)https?://([a-z0-9._~%!$&'()*+,;=:-]*@)?([a-z0-9-]+(\.[a-z0-9-]+)*\.?|\[[0-9a-f:.]+\])(:\d{1,5})?([/?#]\S*)?"
CALLBACK_RE = r"[A-Za-z][A-Za-z0-9+.\-]*://\S+"


def q(value: str) -> str:
    """An SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    """An SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _check(col: Column) -> tuple[str, str] | None:
    """(predicate that is true for a bad value, SQL expression of its message)."""
    v = ident(col.name)
    shown = f"' (got ' || coalesce(''''||left({v}, 60)||'''', 'nothing') || ')'"
    match col.kind:
        case Kind.TEXT:
            return None
        case Kind.ID | Kind.REQUIRED_TEXT:
            return f"({v} IS NULL OR trim({v}) = '')", "'is empty'"
        case Kind.EMAIL:
            bad = f"({v} IS NULL OR NOT regexp_full_match(trim({v}), {q(EMAIL_RE)}))"
            return bad, "'not an e-mail address'" + " || " + shown
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
                f" OR try_cast(trim({v}) AS BIGINT) < 1))"
            )
            return bad, "'not an integer >= 1'" + " || " + shown
        case Kind.ENUM:
            choices = ", ".join(q(c) for c in col.choices)
            bad = f"({v} IS NULL OR {v} NOT IN ({choices}))"
            return bad, f"'not one of {'/'.join(col.choices)}' || {shown}"
    raise AssertionError(col.kind)


def _typed(col: Column, present: bool) -> str:
    """The typed projection of a raw text column (NULL where invalid)."""
    v = ident(col.name)
    if not present:
        return f"NULL::BIGINT AS {v}"
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


@dataclass
class _Source:
    spec: FileSpec
    path: Path | None = None
    parquet: bool = False
    columns: list[str] = field(default_factory=list)
    loaded: bool = False  # raw table exists with trustworthy row order
    _newlines: bool | None = None

    @property
    def label(self) -> str:
        return self.path.name if self.path else f"{self.spec.name}.csv"


class Snapshot:
    """A validated snapshot held in a temporary DuckDB database. Close it when done."""

    def __init__(self, con: duckdb.DuckDBPyConnection, folder: Path, data_dir: Path) -> None:
        self.con = con
        self.folder = folder
        self.data_dir = data_dir

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def count(self, table: str) -> int:
        row = self.con.execute(f"SELECT count(*) FROM {ident(table)}").fetchone()
        return int(row[0]) if row else 0


def open_snapshot(
    data_dir: Path,
    *,
    max_problems: int = 200,
    memory_limit: str = "2GB",
    progress: Progress | None = None,
) -> Snapshot:
    """Load and validate ``data_dir``; raise :class:`ImportFailed` listing every problem."""
    folder = Path(tempfile.mkdtemp(prefix="caseward-snapshot-"))
    con = duckdb.connect(str(folder / "snapshot.duckdb"))
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = {q(memory_limit)}")
    con.execute(f"SET temp_directory = {q(str(folder / 'spill'))}")
    con.execute("SET preserve_insertion_order = true")
    try:
        _Validator(con, data_dir, max_problems, progress or (lambda _m: None)).run()
    except BaseException:
        con.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Snapshot(con, folder, data_dir)


class _Validator:
    def __init__(
        self, con: duckdb.DuckDBPyConnection, data_dir: Path, cap: int, progress: Progress
    ) -> None:
        self.con = con
        self.data_dir = data_dir
        self.cap = cap
        self.progress = progress
        self.problems: list[Problem] = []
        self.total = 0
        self.sources: dict[str, _Source] = {}

    def add(self, problem: Problem) -> None:
        self.total += 1
        if len(self.problems) < self.cap:
            self.problems.append(problem)

    def run(self) -> None:
        if not self.data_dir.is_dir():
            self.add(Problem(str(self.data_dir), 0, "-", "not a folder"))
            raise ImportFailed(self.problems, self.total)
        for spec in FILES:
            self.progress(f"reading {spec.name}")
            source = self._locate(spec)
            self.sources[spec.name] = source
            if source.path is not None:
                self._load(source)
            if source.loaded:
                self._check_values(source)
            self._build_typed(source)
        self.progress("checking keys and references")
        for source in self.sources.values():
            if source.loaded:
                self._check_key(source)
                self._check_references(source)
        for source in self.sources.values():
            if source.path is not None:
                self.con.execute(f"DROP TABLE IF EXISTS {ident('raw_' + source.spec.name)}")
        if self.total:
            raise ImportFailed(sorted(self.problems), self.total)

    # -- files --------------------------------------------------------------------------

    def _locate(self, spec: FileSpec) -> _Source:
        csv_path = self.data_dir / f"{spec.name}.csv"
        pq_path = self.data_dir / f"{spec.name}.parquet"
        source = _Source(spec)
        if csv_path.exists() and pq_path.exists():
            self.add(
                Problem(
                    pq_path.name, 0, "-", f"both {csv_path.name} and {pq_path.name} exist; keep one"
                )
            )
        elif pq_path.exists():
            source.path, source.parquet = pq_path, True
        elif csv_path.exists():
            source.path = csv_path
        elif spec.required:
            self.add(Problem(csv_path.name, 0, "-", "required file is missing"))
        return source

    def _header(self, source: _Source) -> list[str] | None:
        assert source.path is not None
        label = source.label
        if source.parquet:
            try:
                rows = self.con.execute(
                    f"DESCRIBE SELECT * FROM read_parquet({q(str(source.path))})"
                ).fetchall()
            except duckdb.Error as exc:
                self.add(Problem(label, 0, "-", f"unreadable Parquet file: {exc}"))
                return None
            return [str(r[0]) for r in rows]
        try:
            with source.path.open(newline="", encoding="utf-8-sig") as handle:
                header = next(csv.reader(handle), None)
        except (UnicodeDecodeError, csv.Error) as exc:
            self.add(Problem(label, 1, "-", f"unreadable header row: {exc}"))
            return None
        if not header:
            self.add(Problem(label, 1, "-", "file is empty: no header row"))
            return None
        return [h.strip() for h in header]

    def _load(self, source: _Source) -> None:
        assert source.path is not None
        header = self._header(source)
        if header is None:
            return
        spec, label = source.spec, source.label
        seen: set[str] = set()
        for position, name in enumerate(header, start=1):
            if name in seen:
                self.add(Problem(label, 1, name, f"column {position} repeats the name {name!r}"))
            seen.add(name)
        missing = [c for c in spec.columns if c.name not in seen and not c.optional]
        for col in missing:
            self.add(Problem(label, 1, col.name, "required column is missing"))
        if missing or len(seen) != len(header):
            return
        source.columns = [c.name for c in spec.columns if c.name in seen]
        raw = ident("raw_" + spec.name)
        path = q(str(source.path))
        if source.parquet:
            types = dict(
                (str(r[0]), str(r[1]))
                for r in self.con.execute(f"DESCRIBE SELECT * FROM read_parquet({path})").fetchall()
            )
            select = ", ".join(_parquet_text(c, types[c]) for c in source.columns)
            try:
                self.con.execute(f"CREATE TABLE {raw} AS SELECT {select} FROM read_parquet({path})")
            except duckdb.Error as exc:
                self.add(Problem(label, 0, "-", f"unreadable Parquet file: {exc}"))
                return
            source.loaded = True
            return
        columns = "{" + ", ".join(f"{q(h)}: 'VARCHAR'" for h in header) + "}"
        wanted = ", ".join(ident(c) for c in source.columns)
        rej = f"rej_{spec.name}"
        try:
            self.con.execute(
                f"CREATE TABLE {raw} AS SELECT {wanted} FROM read_csv({path}, columns={columns}, "
                "header=true, auto_detect=false, delim=',', quote='\"', escape='\"', "
                "strict_mode=true, null_padding=false, store_rejects=true, "
                f"rejects_table={q(rej)}, rejects_scan={q('scan_' + spec.name)}, "
                "max_line_size=10000000)"
            )
        except duckdb.Error as exc:
            self.add(Problem(label, 0, "-", f"unreadable CSV file: {exc}"))
            return
        rejects = self.con.execute(
            f"SELECT line, arg_min(column_name, column_idx), error_type, "
            f"arg_min(error_message, column_idx) FROM {rej} GROUP BY line, error_type "
            f"ORDER BY line"
        ).fetchall()
        for line, column, error_type, message in rejects:
            text = str(message).split("\n")[0]
            if str(error_type) == "MISSING COLUMNS":
                text = f"row is incomplete (truncated file?): {text}"
            self.add(Problem(label, int(line), str(column or "-"), text))
        source.loaded = not rejects

    # -- checks ---------------------------------------------------------------------------

    def _lines(self, source: _Source, rowids: list[int]) -> dict[int, int]:
        """Physical line (CSV) or 1-based row (Parquet) of each raw row id."""
        if source.parquet:
            return {r: r + 1 for r in rowids}
        raw = ident("raw_" + source.spec.name)
        newline_counts = " + ".join(
            f"coalesce(length({ident(c)}) - length(replace({ident(c)}, chr(10), '')), 0)"
            for c in source.columns
        )
        if source._newlines is None:
            row = self.con.execute(
                f"SELECT count(*) FROM {raw} WHERE ({newline_counts}) > 0"
            ).fetchone()
            source._newlines = bool(row and row[0])
        if not source._newlines:
            return {r: r + 2 for r in rowids}
        wanted = ", ".join(str(r) for r in rowids)
        rows = self.con.execute(
            f"SELECT rid, 2 + rid + coalesce(sum(nl) OVER (ORDER BY rid ROWS BETWEEN "
            f"UNBOUNDED PRECEDING AND 1 PRECEDING), 0) FROM "
            f"(SELECT rowid AS rid, ({newline_counts}) AS nl FROM {raw}) "
            f"QUALIFY rid IN ({wanted})"
        ).fetchall()
        return {int(r): int(line) for r, line in rows}

    def _report(self, source: _Source, rows: list[tuple[int, str, str]]) -> None:
        lines = self._lines(source, sorted({r for r, _c, _m in rows}))
        for rowid, column, message in rows:
            self.add(Problem(source.label, lines[rowid], column, message))

    def _check_values(self, source: _Source) -> None:
        raw = ident("raw_" + source.spec.name)
        checks = [
            (col.name, check)
            for col in source.spec.columns
            if col.name in source.columns and (check := _check(col)) is not None
        ]
        if not checks:
            return
        counts = ", ".join(f"count_if({bad})" for _n, (bad, _m) in checks)
        found = self.con.execute(f"SELECT {counts} FROM {raw}").fetchone() or ()
        if not any(found):
            return
        room = max(self.cap - len(self.problems), 1)
        cases = ", ".join(
            f"CASE WHEN {bad} THEN {q(name)} || chr(9) || ({msg}) END"
            for name, (bad, msg) in checks
        )
        where = " OR ".join(bad for _n, (bad, _m) in checks)
        rows = self.con.execute(
            f"SELECT rowid, [{cases}] FROM {raw} WHERE {where} ORDER BY rowid LIMIT {room}"
        ).fetchall()
        detail: list[tuple[int, str, str]] = []
        for rowid, messages in rows:
            for item in messages:
                if item is not None:
                    column, message = str(item).split("\t", 1)
                    detail.append((int(rowid), column, message))
        self._report(source, detail)
        self.total += sum(int(n) for n in found) - len(detail)

    def _build_typed(self, source: _Source) -> None:
        spec = source.spec
        table = ident(spec.name)
        if source.loaded:
            select = ", ".join(_typed(c, c.name in source.columns) for c in spec.columns)
            self.con.execute(
                f"CREATE TABLE {table} AS SELECT rowid AS rn, {select} "
                f"FROM {ident('raw_' + spec.name)}"
            )
        else:
            cols = ", ".join(_empty_column(c) for c in spec.columns)
            self.con.execute(f"CREATE TABLE {table} AS SELECT 0::BIGINT AS rn, {cols} LIMIT 0")

    def _check_key(self, source: _Source) -> None:
        key = source.spec.key
        if not key:
            return
        table = ident(source.spec.name)
        cols = ", ".join(ident(k) for k in key)
        not_null = " AND ".join(f"{ident(k)} IS NOT NULL" for k in key)
        row = self.con.execute(
            f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {table} "
            f"WHERE {not_null} GROUP BY {cols} HAVING count(*) > 1)"
        ).fetchone()
        if not row or not row[0]:
            return
        room = max(self.cap - len(self.problems), 1)
        rows = self.con.execute(
            f"SELECT rn, first FROM (SELECT rn, min(rn) OVER (PARTITION BY {cols}) AS first "
            f"FROM {table} WHERE {not_null}) WHERE rn <> first ORDER BY rn LIMIT {room}"
        ).fetchall()
        lines = self._lines(source, sorted({int(r) for pair in rows for r in pair}))
        what = " + ".join(key)
        for rn, first in rows:
            self.add(
                Problem(
                    source.label,
                    lines[int(rn)],
                    key[-1] if len(key) > 1 else key[0],
                    f"duplicate {what} (first on line {lines[int(first)]})",
                )
            )
        self.total += int(row[0]) - len(rows)

    def _check_references(self, source: _Source) -> None:
        for ref in source.spec.references:
            target = self.sources.get(ref.target)
            if target is None or not target.loaded:
                continue
            table, other = ident(source.spec.name), ident(ref.target)
            col, target_col = ident(ref.column), ident(ref.target_column)
            base = (
                f"FROM {table} t ANTI JOIN {other} o ON t.{col} = o.{target_col} "
                f"WHERE t.{col} IS NOT NULL AND trim(t.{col}) <> ''"
            )
            row = self.con.execute(f"SELECT count(*) {base}").fetchone()
            if not row or not row[0]:
                continue
            room = max(self.cap - len(self.problems), 1)
            rows = self.con.execute(
                f"SELECT t.rn, t.{col} {base} ORDER BY t.rn LIMIT {room}"
            ).fetchall()
            noun = ref.target.rstrip("s")
            detail = [
                (int(rn), ref.column, f"unknown {noun} {str(value)[:60]!r} (not in {target.label})")
                for rn, value in rows
            ]
            self._report(source, detail)
            self.total += int(row[0]) - len(detail)


def _parquet_text(name: str, duck_type: str) -> str:
    """A Parquet column as the text the CSV reader would have produced."""
    v = ident(name)
    upper = duck_type.upper()
    if upper.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"strftime({v} AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ') AS {v}"
    if upper.startswith("TIMESTAMP"):  # Parquet instants without a zone are UTC
        return f"strftime({v}, '%Y-%m-%dT%H:%M:%S.%fZ') AS {v}"
    return f"CAST({v} AS VARCHAR) AS {v}"


def _empty_column(col: Column) -> str:
    duck = {
        Kind.TIMESTAMP: "TIMESTAMP",
        Kind.COUNT: "BIGINT",
        Kind.LIMIT: "BIGINT",
    }.get(col.kind, "VARCHAR")
    return f"NULL::{duck} AS {ident(col.name)}"
