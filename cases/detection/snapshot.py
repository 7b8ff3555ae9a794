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

from cases.detection.checks import (
    check,
    empty_column,
    ident,
    native_kind,
    parquet_column,
    parsed,
    q,
    typed,
)
from cases.detection.contract import FILES, FileSpec
from cases.detection.problems import ImportFailed, Problem

Progress = Callable[[str], None]


@dataclass
class _Source:
    spec: FileSpec
    path: Path | None = None
    parquet: bool = False
    columns: list[str] = field(default_factory=list)
    native: dict[str, str] = field(default_factory=dict)  # Parquet columns of native type
    loaded: bool = False  # raw table exists with trustworthy row order
    typed_view: bool = False  # the typed table is a view over the raw one (kept)
    _newlines: bool | None = None

    @property
    def label(self) -> str:
        return self.path.name if self.path else f"{self.spec.name}.csv"


def one_line(error: object) -> str:
    """The first line of an error, at most 300 characters (DuckDB adds the query below)."""
    lines = str(error).strip().splitlines()
    first = lines[0] if lines else type(error).__name__
    return first if len(first) <= 300 else first[:299] + "…"


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
    max_field_chars: int = 10_000,
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
        _Validator(
            con, data_dir, max_problems, progress or (lambda _m: None), max_field_chars
        ).run()
    except BaseException:
        con.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Snapshot(con, folder, data_dir)


class _Validator:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        data_dir: Path,
        cap: int,
        progress: Progress,
        max_field_chars: int = 10_000,
    ) -> None:
        self.con = con
        self.data_dir = data_dir
        self.cap = cap
        self.progress = progress
        self.max_field_chars = max_field_chars
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
            if source.path is not None and not source.typed_view:
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
                self.add(Problem(label, 0, "-", f"unreadable Parquet file: {one_line(exc)}"))
                return None
            return [str(r[0]) for r in rows]
        try:
            with source.path.open("rb") as handle:
                first = handle.readline(1_000_000)
            text = first.decode("utf-8-sig")
            header = next(csv.reader([text]), None)
        except UnicodeDecodeError as exc:
            self.add(Problem(label, 1, "-", f"header row is not UTF-8 (byte {exc.start + 1})"))
            return None
        except csv.Error as exc:
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
            if not name:
                self.add(Problem(label, 1, "-", f"column {position} has no name"))
            elif name in seen:
                self.add(Problem(label, 1, name, f"column {position} repeats the name {name!r}"))
            seen.add(name)
        missing = [c for c in spec.columns if c.name not in seen and not c.optional]
        for col in missing:
            self.add(Problem(label, 1, col.name, "required column is missing"))
        if missing or len(seen) != len(header) or "" in seen:
            return
        source.columns = [c.name for c in spec.columns if c.name in seen]
        raw = ident("raw_" + spec.name)
        path = q(str(source.path))
        if source.parquet:
            types = dict(
                (str(r[0]), str(r[1]))
                for r in self.con.execute(f"DESCRIBE SELECT * FROM read_parquet({path})").fetchall()
            )
            present = [c for c in spec.columns if c.name in seen]
            source.native = {
                c.name: kind for c in present if (kind := native_kind(c, types[c.name]))
            }
            select = ", ".join(parquet_column(c, types[c.name]) for c in present)
            try:
                self.con.execute(f"CREATE TABLE {raw} AS SELECT {select} FROM read_parquet({path})")
            except duckdb.Error as exc:
                self.add(Problem(label, 0, "-", f"unreadable Parquet file: {one_line(exc)}"))
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
            self.add(Problem(label, 0, "-", f"unreadable CSV file: {one_line(exc)}"))
            return
        rejects = self.con.execute(
            f"SELECT line, arg_min(column_name, coalesce(column_idx, 0)), error_type, "
            f"arg_min(error_message, coalesce(column_idx, 0)) FROM {rej} "
            f"GROUP BY line, error_type ORDER BY line"
        ).fetchall()
        for line, column, error_type, message in rejects:
            text = one_line(message or error_type)
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
            (col.name, found)
            for col in source.spec.columns
            if col.name in source.columns
            and (found := check(col, source.native.get(col.name), self.max_field_chars)) is not None
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
        """The typed table. Parsing text (timestamps, numbers) is done once, into a table;
        where nothing is parsed (a Parquet file of native types, plain text) it is a view
        over the loaded rows, so that a large file is not copied a second time."""
        spec = source.spec
        table = ident(spec.name)
        if source.loaded:
            columns = [
                (c, c.name in source.columns, source.native.get(c.name)) for c in spec.columns
            ]
            select = ", ".join(typed(*column) for column in columns)
            source.typed_view = not any(parsed(*column) for column in columns)
            kind = "VIEW" if source.typed_view else "TABLE"
            self.con.execute(
                f"CREATE {kind} {table} AS SELECT rowid AS rn, {select} "
                f"FROM {ident('raw_' + spec.name)}"
            )
        else:
            cols = ", ".join(empty_column(c) for c in spec.columns)
            self.con.execute(f"CREATE TABLE {table} AS SELECT 0::BIGINT AS rn, {cols} LIMIT 0")

    def _check_key(self, source: _Source) -> None:
        key = source.spec.key
        if not key:
            return
        table = ident(source.spec.name)
        cols = ", ".join(ident(k) for k in key)
        not_null = " AND ".join(f"{ident(k)} IS NOT NULL" for k in key)
        # distinct hashes of distinct keys: no fewer than rows means no duplicate (the
        # exact, slower count runs only when they differ, duplicates or a hash collision)
        hashes = self.con.execute(
            f"SELECT count(*) - count(DISTINCT hash({cols})) FROM {table} WHERE {not_null}"
        ).fetchall()
        if not hashes[0][0]:
            return
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
