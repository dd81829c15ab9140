#!/usr/bin/env python3
"""Reads transform's silver Parquet files with pyarrow and DuckDB and
compares them, row for row and value for value, with silver.bars.

The e2e test writes EXPECTED (JSON): {"files": [{"path": "...", "rows":
[[ticker, timespan, ts_us, open, high, low, close, volume, vwap, trades,
execution_id], ...]}]}, the rows that silver.bars holds for each file's
(dataset, date), ORDER BY ticker, ts. For each file:

- pyarrow: the schema (names, types, timestamp[us, tz=UTC], which columns
  may be null) and every value and null, in order;
- DuckDB: read_parquet's column types and every value and null, in order,
  and the folder's Hive partition (date=) as the UTC date of every bar.

Each check prints `ok - NAME` or `not ok - NAME: REASON`; the last line is
`N passed, N failed`; the exit status is 1 when a check failed.

    .run/venv/bin/python tests/lake/check_silver_lake.py EXPECTED
"""

from __future__ import annotations

import json
import sys

try:
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq
except ImportError as exc:  # reported as a failure, not a crash
    print(f"not ok - import readers: {exc} (run tests/env/pyenv.sh)")
    print("0 passed, 1 failed")
    sys.exit(1)

PASSED = 0
FAILED = 0

SCHEMA = [
    ("ticker", pa.string(), False),
    ("timespan", pa.string(), False),
    ("ts", pa.timestamp("us", tz="UTC"), False),
    ("open", pa.float64(), False),
    ("high", pa.float64(), False),
    ("low", pa.float64(), False),
    ("close", pa.float64(), False),
    ("volume", pa.float64(), True),
    ("vwap", pa.float64(), True),
    ("trades", pa.int64(), True),
    ("execution_id", pa.string(), False),
]

DUCK_TYPES = ["VARCHAR", "VARCHAR", "TIMESTAMP WITH TIME ZONE", "DOUBLE", "DOUBLE", "DOUBLE",
              "DOUBLE", "DOUBLE", "DOUBLE", "BIGINT", "VARCHAR"]


def check(name: str, ok: bool, reason: str = "") -> None:
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"ok - {name}")
    else:
        FAILED += 1
        print(f"not ok - {name}: {reason}")


def first_difference(got: list, want: list) -> str:
    if len(got) != len(want):
        return f"{len(got)} rows, silver has {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return f"row {i}: {g!r} != {w!r}"
    return ""


def with_pyarrow(path: str, want: list) -> None:
    table = pq.read_table(path)
    fields = [(f.name, f.type, f.nullable) for f in table.schema]
    check(f"pyarrow schema {path}", fields == SCHEMA, f"{fields}")
    cols = []
    for name, _, _ in SCHEMA:
        col = table.column(name)
        if name == "ts":
            col = col.cast(pa.int64())
        cols.append(col.to_pylist())
    got = [list(r) for r in zip(*cols)] if cols else []
    diff = first_difference(got, want)
    check(f"pyarrow rows {path} ({len(want)})", diff == "", diff)


def with_duckdb(path: str, want: list) -> None:
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.execute("SET TimeZone = 'UTC'")
    rel = con.execute("DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = false)",
                      [path]).fetchall()
    types = [r[1] for r in rel]
    names = [r[0] for r in rel]
    check(f"duckdb types {path}",
          names == [s[0] for s in SCHEMA] and types == DUCK_TYPES, f"{names} {types}")
    rows = con.execute(
        "SELECT ticker, timespan, epoch_us(ts), open, high, low, close, volume, vwap, trades,"
        " execution_id FROM read_parquet(?, hive_partitioning = false)", [path]).fetchall()
    got = [list(r) for r in rows]
    diff = first_difference(got, want)
    check(f"duckdb rows {path} ({len(want)})", diff == "", diff)
    # The folder is a Hive partition: date=YYYY-MM-DD, the UTC date of every bar.
    dates = con.execute(
        "SELECT DISTINCT CAST(date AS VARCHAR), CAST(ts AS DATE) = date"
        " FROM read_parquet(?, hive_partitioning = true)", [path]).fetchall()
    folder = path.split("date=")[1].split("/")[0]
    check(f"duckdb hive date {path}", not want or dates == [(folder, True)], f"{dates}")
    con.close()


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        expected = json.load(f)
    check("files listed", len(expected["files"]) > 0, "no files")
    for item in expected["files"]:
        try:
            with_pyarrow(item["path"], item["rows"])
        except Exception as exc:  # noqa: BLE001 - any reader failure is a failed check
            check(f"pyarrow reads {item['path']}", False, repr(exc))
        try:
            with_duckdb(item["path"], item["rows"])
        except Exception as exc:  # noqa: BLE001
            check(f"duckdb reads {item['path']}", False, repr(exc))
    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
