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

A path is a file, or an object of a bucket lake (s3://bucket/key), read
from the S3 endpoint in TICKFLOW_LAKE_S3_ENDPOINT (scheme://host:port,
path-style requests) with TICKFLOW_LAKE_S3_REGION, _ACCESS_KEY_ID and
_SECRET_ACCESS_KEY: by pyarrow's S3FileSystem, and by DuckDB when its httpfs
extension is installed for the running DuckDB (the PyPI package
duckdb-extension-httpfs of the same version); without it the DuckDB checks
of s3:// paths are skipped with a note.

Each check prints `ok - NAME` or `not ok - NAME: REASON`; the last line is
`N passed, N failed`; the exit status is 1 when a check failed.

    .run/venv/bin/python tests/lake/check_silver_lake.py EXPECTED
"""

from __future__ import annotations

import json
import os
import sys
from urllib.parse import urlsplit

try:
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import fs as pafs
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


class S3Settings:
    """The bucket lake's endpoint and keys, from TICKFLOW_LAKE_S3_*."""

    def __init__(self) -> None:
        endpoint = os.environ.get("TICKFLOW_LAKE_S3_ENDPOINT", "")
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"TICKFLOW_LAKE_S3_ENDPOINT is {endpoint!r}, not scheme://host:port")
        self.scheme = parts.scheme
        self.host = parts.netloc
        self.region = os.environ.get("TICKFLOW_LAKE_S3_REGION") or "us-east-1"
        self.key = os.environ.get("TICKFLOW_LAKE_S3_ACCESS_KEY_ID", "")
        self.secret = os.environ.get("TICKFLOW_LAKE_S3_SECRET_ACCESS_KEY", "")
        if not self.key or not self.secret:
            raise ValueError("TICKFLOW_LAKE_S3_ACCESS_KEY_ID and _SECRET_ACCESS_KEY must be set")


def pyarrow_source(path: str) -> tuple[str, pafs.FileSystem | None]:
    """What pq.read_table takes for path: a file as is, s3://b/k as b/k on an S3FileSystem."""
    if not path.startswith("s3://"):
        return path, None
    s3 = S3Settings()
    filesystem = pafs.S3FileSystem(access_key=s3.key, secret_key=s3.secret, region=s3.region,
                                   scheme=s3.scheme, endpoint_override=s3.host,
                                   force_virtual_addressing=False)
    return path[len("s3://"):], filesystem


def sql_text(value: str) -> str:
    """value as an SQL string literal (CREATE SECRET takes no parameters)."""
    return "'" + value.replace("'", "''") + "'"


def httpfs_extension() -> str:
    """The httpfs extension file for the running DuckDB, or "" when not installed."""
    try:
        import duckdb_extension_httpfs  # type: ignore[import-not-found]
    except ImportError:
        return ""
    found = os.path.join(os.path.dirname(duckdb_extension_httpfs.__file__), "extensions",
                         f"v{duckdb.__version__}", "httpfs.duckdb_extension")
    return found if os.path.isfile(found) else ""


def duckdb_connect(path: str) -> duckdb.DuckDBPyConnection | None:
    """A connection that can read path; None (a note printed) when DuckDB cannot reach S3 here."""
    if not path.startswith("s3://"):
        return duckdb.connect()
    extension = httpfs_extension()
    if not extension:
        print(f"# duckdb skipped for {path}: no httpfs extension for DuckDB {duckdb.__version__}"
              " here (PyPI duckdb-extension-httpfs of the same version as duckdb)")
        return None
    s3 = S3Settings()
    # Nothing is fetched at run time: the extension comes from the venv.
    con = duckdb.connect(config={"autoinstall_known_extensions": "false",
                                 "autoload_known_extensions": "false"})
    con.execute(f"LOAD '{extension}'")
    con.execute(f"CREATE SECRET lake (TYPE s3, KEY_ID {sql_text(s3.key)},"
                f" SECRET {sql_text(s3.secret)}, ENDPOINT {sql_text(s3.host)}, URL_STYLE 'path',"
                f" USE_SSL {'true' if s3.scheme == 'https' else 'false'},"
                f" REGION {sql_text(s3.region)})")
    return con


def with_pyarrow(path: str, want: list) -> None:
    source, filesystem = pyarrow_source(path)
    table = pq.read_table(source, filesystem=filesystem)
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
    con = duckdb_connect(path)
    if con is None:
        return
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
