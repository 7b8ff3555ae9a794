"""Benchmark: generate platforms of growing size and time ``caseward detect`` end to end.

Each size runs in a fresh process against a fresh SQLite database, so the figures include
validation, the registry import, the four detectors and opening every case. Peak memory is
the child's maximum resident set size (``wait4`` rusage). Usage::

    python benchmarks/bench_detect.py --sizes 10000,100000,1000000 --format parquet

Prints one Markdown table row per size (paste into docs/detection.md), then the comparable
figure: seconds of ``caseward detect`` per million apps (wall and CPU) at the largest size,
with the machine's load average, since a shared machine stretches wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def _dir_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def _run(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds, peak RSS in KiB, exit code) of one child process.

    CPU time (user + system, all threads) is reported next to wall time because a shared
    machine stretches wall time while CPU time stays close to the work done.
    """
    start = time.perf_counter()
    with log.open("wb") as out:
        child = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(child.pid, 0)
    cpu = usage.ru_utime + usage.ru_stime
    return time.perf_counter() - start, cpu, usage.ru_maxrss, os.waitstatus_to_exitcode(status)


def bench(size: int, fmt: str, workdir: Path, seed: int) -> dict[str, float]:
    folder = workdir / f"snap-{size}-{fmt}"
    database = workdir / f"bench-{size}-{fmt}.db"
    database.unlink(missing_ok=True)
    env = dict(
        os.environ,
        CASEWARD_DATABASE_URL=f"sqlite:///{database}",
        CASEWARD_SIMULATION="true",  # a typed actor and a fixed time
        CASEWARD_ACTOR="bench",
    )
    caseward = str(Path(sys.executable).with_name("caseward"))
    gen_wall, _gen_cpu, _gen_rss, code = _run(
        [
            caseward,
            "demo-data",
            str(folder),
            "--apps",
            str(size),
            "--seed",
            str(seed),
            "--format",
            fmt,
        ],
        env,
        workdir / f"gen-{size}.log",
    )
    assert code == 0, (workdir / f"gen-{size}.log").read_text()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import cases.core.models; from cases.core.db import Base, make_engine; "
            f"Base.metadata.create_all(make_engine('sqlite:///{database}'))",
        ],
        check=True,
    )
    log = workdir / f"detect-{size}.json"
    wall, cpu, rss, code = _run([caseward, "detect", "--data", str(folder), "--json"], env, log)
    assert code == 0, log.read_text()[-2000:]
    findings = json.loads(log.read_text())
    truth = json.loads((folder / "ground_truth.json").read_text())
    import duckdb

    reader = "read_parquet" if fmt == "parquet" else "read_csv"
    usage_rows = (
        duckdb.connect()
        .execute(f"SELECT count(*) FROM {reader}('{folder / ('usage.' + fmt)}')")
        .fetchall()[0][0]
    )
    return {
        "apps": truth["apps"],
        "developers": truth["developers"],
        "usage_rows": int(usage_rows),
        "snapshot_mib": _dir_size(folder) / 2**20,
        "generate_s": gen_wall,
        "detect_s": wall,
        "detect_cpu_s": cpu,
        "detect_peak_rss_mib": rss / 1024,
        "findings": len(findings),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--format", default="parquet", choices=["csv", "parquet"])
    parser.add_argument("--workdir", default="/tmp/caseward-bench")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    print(
        "| apps | developers | usage rows | snapshot | format | detect wall | detect CPU "
        "| peak RSS | findings | generate |"
    )
    print("|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    result: dict[str, float] = {}
    for size in (int(s) for s in args.sizes.split(",")):
        result = r = bench(size, args.format, workdir, args.seed)
        print(
            f"| {r['apps']:,} | {r['developers']:,} | {r['usage_rows']:,} "
            f"| {r['snapshot_mib']:.0f} MiB | {args.format} | {r['detect_s']:.1f} s "
            f"| {r['detect_cpu_s']:.1f} s "
            f"| {r['detect_peak_rss_mib']:.0f} MiB | {r['findings']:,} "
            f"| {r['generate_s']:.1f} s |",
            flush=True,
        )
    per_million = 1_000_000 / result["apps"]
    print(
        f"detect ({args.format}): {result['detect_s'] * per_million:.1f} s per 1M apps wall, "
        f"{result['detect_cpu_s'] * per_million:.1f} s CPU; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
