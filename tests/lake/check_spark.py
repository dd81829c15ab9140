#!/usr/bin/env python3
"""Reads transform's silver Parquet lake with Apache Spark and compares it,
value for value, with silver.bars.

EXPECTED (JSON) is the file tests/e2e/test_e2e_replay.c writes: {"files":
[{"path": "/abs/<lake>/silver/<dataset>/date=YYYY-MM-DD/bars.parquet",
"rows": [[ticker, timespan, ts_us, open, high, low, close, volume, vwap,
trades, execution_id], ...]}]}. Spark reads each dataset's folder
(<lake>/silver/<dataset>) as one table; partition discovery turns the
date=YYYY-MM-DD folders into a `date` column. With --s3-prefix
s3://BUCKET/PREFIX it reads the same relative paths under
s3a://BUCKET/PREFIX/ instead, with the endpoint and keys from the
TICKFLOW_LAKE_S3_* environment or .run/s3.env (tests/env/seaweedfs.sh up
writes it); EXPECTED's paths may also be s3:// URIs, read the same way.

Per dataset:
- the schema: names and Spark types, `date` a DateType partition column
  whose value is the folder each row was read from;
- the row count, and the count of each date, equal EXPECTED's;
- `date` is the UTC date of `ts` in every row (computed from epoch
  microseconds, so no time zone enters);
- `ts`, as epoch microseconds, equals ts_us; `ts` rendered in the session
  zone (UTC) equals ts_us rendered in UTC;
- every row equals one of EXPECTED's and the other way round (a multiset
  comparison done by Spark: exceptAll both ways), floats exactly;
- in order (date, ticker, ts), every row, or when there are more than 2000
  a sample taken at a fixed stride, equals EXPECTED's row at that place.

The result must not depend on the machine's zone: run it with
TZ=America/New_York too (the JVM and Python then default to New York).

Each check prints `ok - NAME` or `not ok - NAME: REASON`; the last line is
`N passed, N failed`; the exit status is 1 when a check failed.

    py=$(tests/env/spark.sh)
    "$py" tests/lake/check_spark.py EXPECTED
    "$py" tests/lake/check_spark.py EXPECTED --s3-prefix s3://tickflow-test/run1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
from typing import Any

try:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import types as T
except ImportError as exc:  # reported as a failure, not a crash
    print(f"not ok - import pyspark: {exc} (run with the python tests/env/spark.sh prints)")
    print("0 passed, 1 failed")
    sys.exit(1)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_MAX = 2000
COLUMNS = ["ticker", "timespan", "ts", "open", "high", "low", "close", "volume", "vwap",
           "trades", "execution_id"]
SCHEMA = [
    ("ticker", T.StringType()),
    ("timespan", T.StringType()),
    ("ts", T.TimestampType()),
    ("open", T.DoubleType()),
    ("high", T.DoubleType()),
    ("low", T.DoubleType()),
    ("close", T.DoubleType()),
    ("volume", T.DoubleType()),
    ("vwap", T.DoubleType()),
    ("trades", T.LongType()),
    ("execution_id", T.StringType()),
    ("date", T.DateType()),
]
# EXPECTED's rows as Spark sees them once ts is read as epoch microseconds.
ROW_TYPE = T.StructType([
    T.StructField("ticker", T.StringType()),
    T.StructField("timespan", T.StringType()),
    T.StructField("ts_us", T.LongType()),
    T.StructField("open", T.DoubleType()),
    T.StructField("high", T.DoubleType()),
    T.StructField("low", T.DoubleType()),
    T.StructField("close", T.DoubleType()),
    T.StructField("volume", T.DoubleType()),
    T.StructField("vwap", T.DoubleType()),
    T.StructField("trades", T.LongType()),
    T.StructField("execution_id", T.StringType()),
    T.StructField("date", T.StringType()),
])
LOG4J2 = """status = error
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = stderr
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = error
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""

PASSED = 0
FAILED = 0


def check(name: str, ok: bool, reason: str = "") -> None:
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"ok - {name}", flush=True)
    else:
        FAILED += 1
        print(f"not ok - {name}: {reason}", flush=True)


def load_expected(path: str) -> dict[str, dict[str, Any]]:
    """EXPECTED's rows by dataset: its lake root, and rows tagged with the
    date of the folder they were written to, in (date, ticker, ts) order."""
    with open(path, encoding="utf-8") as f:
        files = json.load(f)["files"]
    datasets: dict[str, dict[str, Any]] = {}
    for item in files:
        root, sep, rel = item["path"].partition("/silver/")
        parts = rel.split("/")
        if not sep or len(parts) != 3 or not parts[1].startswith("date="):
            raise ValueError(f"not a silver lake file: {item['path']}")
        dataset, date = parts[0], parts[1][len("date="):]
        entry = datasets.setdefault(dataset, {"root": root, "rows": []})
        if entry["root"] != root:
            raise ValueError(f"{dataset} is in two lakes: {entry['root']} and {root}")
        for r in item["rows"]:
            entry["rows"].append(typed(r) + [date])
    for entry in datasets.values():
        entry["rows"].sort(key=lambda r: (r[11], r[0].encode(), r[2]))
    return datasets


def typed(r: list[Any]) -> list[Any]:
    """JSON numbers as the types Spark gives back (9.0 arrives as 9)."""
    def flt(v: Any) -> float | None:
        return None if v is None else float(v)
    return [r[0], r[1], int(r[2]), flt(r[3]), flt(r[4]), flt(r[5]), flt(r[6]), flt(r[7]),
            flt(r[8]), None if r[9] is None else int(r[9]), r[10]]


def utc_text(us: int) -> str:
    t = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=us)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")


def first_difference(got: list[list[Any]], want: list[list[Any]], stride: int = 1) -> str:
    if len(got) != len(want):
        return f"{len(got)} rows, EXPECTED has {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            cols = [f"{n}: {a!r} != {b!r}" for n, a, b in
                    zip(COLUMNS[:2] + ["ts_us"] + COLUMNS[3:] + ["date"], g, w) if a != b]
            return f"row {i * stride} ({g[0]} {g[2]}): {', '.join(cols)}"
    return ""


def reason_of(exc: Exception) -> str:
    """The first line of an exception; for a Java one, the Java exception's."""
    java = getattr(exc, "java_exception", None)
    text = str(java) if java is not None else f"{type(exc).__name__}: {exc}"
    return text.strip().splitlines()[0] if text.strip() else repr(exc)


def s3_settings() -> dict[str, str]:
    """TICKFLOW_LAKE_S3_* from the environment, else from .run/s3.env."""
    env = dict(os.environ)
    path = os.path.join(REPO, ".run", "s3.env")
    if "TICKFLOW_LAKE_S3_ENDPOINT" not in env and os.path.exists(path):
        out = subprocess.run(["bash", "-c", f'set -a; . "{path}"; env -0'], check=True,
                             capture_output=True, text=True).stdout
        env = dict(kv.split("=", 1) for kv in out.split("\0") if "=" in kv)
    names = ["TICKFLOW_LAKE_S3_ENDPOINT", "TICKFLOW_LAKE_S3_ACCESS_KEY_ID",
             "TICKFLOW_LAKE_S3_SECRET_ACCESS_KEY"]
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not set and not in {path}"
                           " (bash tests/env/seaweedfs.sh up writes it)")
    return {n: env[n] for n in names} | {
        "TICKFLOW_LAKE_S3_REGION": env.get("TICKFLOW_LAKE_S3_REGION", "us-east-1")}


def jar_list() -> str:
    out = subprocess.run(["bash", os.path.join(REPO, "tests", "env", "spark.sh"), "jars"],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    return out.strip()


def session(s3: dict[str, str] | None, conf_dir: str) -> SparkSession:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Spark puts SPARK_CONF_DIR on the driver's classpath: our log4j2.properties, errors
    # only (PythonGatewayServer's level at error also keeps the "default log level" notice off).
    os.environ["SPARK_CONF_DIR"] = conf_dir
    b = (SparkSession.builder.master("local[2]").appName("check_spark")
         .config("spark.ui.enabled", "false")
         .config("spark.sql.session.timeZone", "UTC")
         .config("spark.sql.shuffle.partitions", "2")
         .config("spark.ui.showConsoleProgress", "false"))
    if s3 is not None:
        endpoint = s3["TICKFLOW_LAKE_S3_ENDPOINT"]
        b = (b.config("spark.jars", jar_list())
             .config("spark.hadoop.fs.s3a.endpoint", endpoint)
             .config("spark.hadoop.fs.s3a.endpoint.region", s3["TICKFLOW_LAKE_S3_REGION"])
             .config("spark.hadoop.fs.s3a.path.style.access", "true")
             .config("spark.hadoop.fs.s3a.connection.ssl.enabled",
                     "true" if endpoint.startswith("https://") else "false")
             .config("spark.hadoop.fs.s3a.aws.credentials.provider",
                     "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"))
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    if s3 is not None:
        # The keys go to the running JVM, not into spark-submit's command line (ps shows that).
        hadoop = spark.sparkContext._jsc.hadoopConfiguration()
        hadoop.set("fs.s3a.access.key", s3["TICKFLOW_LAKE_S3_ACCESS_KEY_ID"])
        hadoop.set("fs.s3a.secret.key", s3["TICKFLOW_LAKE_S3_SECRET_ACCESS_KEY"])
    return spark


def check_dataset(spark: SparkSession, name: str, location: str, want: list[list[Any]]) -> None:
    df = spark.read.parquet(location)
    fields = [(f.name, f.dataType) for f in df.schema.fields]
    check(f"{name} schema", fields == SCHEMA,
          ", ".join(f"{n} {t.simpleString()}" for n, t in fields))
    df.createOrReplaceTempView("lake")

    # date is the partition folder each row was read from.
    bad = (df.select("date", "_metadata.file_path")
           .where("file_path NOT LIKE concat('%/date=', CAST(date AS STRING), '/%')").count())
    check(f"{name} date is the partition folder", bad == 0, f"{bad} rows elsewhere")

    got_count = df.count()
    check(f"{name} row count ({len(want)})", got_count == len(want),
          f"Spark reads {got_count} rows, EXPECTED has {len(want)}")
    want_dates: dict[str, int] = {}
    for r in want:
        want_dates[r[11]] = want_dates.get(r[11], 0) + 1
    got_dates = {str(r[0]): r[1] for r in
                 spark.sql("SELECT date, count(*) FROM lake GROUP BY date").collect()}
    check(f"{name} rows per date ({len(want_dates)} dates)", got_dates == want_dates,
          f"Spark {dict(sorted(got_dates.items()))}, EXPECTED {dict(sorted(want_dates.items()))}")

    # The UTC date of ts from epoch microseconds: no zone is involved.
    bad = spark.sql(
        "SELECT count(*) FROM lake WHERE unix_date(date) <>"
        " CAST(floor(unix_micros(ts) / 86400000000) AS INT)").first()[0]
    check(f"{name} date is the UTC date of ts", bad == 0, f"{bad} rows differ")

    # ts in the session zone (UTC) as text, against ts_us in UTC, on the rows compared below.
    stride = max(1, math.ceil(len(want) / SAMPLE_MAX))
    ordered = spark.sql(
        "SELECT ticker, timespan, unix_micros(ts) AS ts_us, open, high, low, close, volume,"
        " vwap, trades, execution_id, CAST(date AS STRING) AS date,"
        " date_format(ts, \"yyyy-MM-dd'T'HH:mm:ss.SSSSSS\") AS ts_text,"
        " row_number() OVER (ORDER BY date, ticker, ts) - 1 AS i FROM lake")
    sample = ordered.where(f"i % {stride} = 0").orderBy("i").collect()
    got = [list(r)[:12] for r in sample]
    picked = want[::stride]
    texts = [(r["ts_text"], utc_text(r["ts_us"])) for r in sample]
    wrong = [t for t in texts if t[0] != t[1]]
    check(f"{name} ts shown in UTC ({len(texts)} rows)", not wrong and len(texts) > 0,
          f"{wrong[0][0]} != {wrong[0][1]}" if wrong else "no rows")
    got_ts, want_ts = [g[2] for g in got], [w[2] for w in picked]
    ts_diff = f"{len(got_ts)} rows, EXPECTED has {len(want_ts)}" if len(got_ts) != len(want_ts) \
        else next((f"row {i * stride} ({picked[i][0]}): ts {g} us, ts_us {w}"
                   for i, (g, w) in enumerate(zip(got_ts, want_ts)) if g != w), "")
    check(f"{name} ts equals ts_us ({len(picked)} rows, stride {stride})", ts_diff == "",
          ts_diff)
    diff = first_difference(got, picked, stride)
    check(f"{name} rows in order ({len(picked)} of {len(want)}, stride {stride})", diff == "",
          diff)

    # Every row, as a multiset, both ways.
    expected_df = spark.createDataFrame(want, ROW_TYPE)
    lake_rows: DataFrame = spark.sql(
        "SELECT ticker, timespan, unix_micros(ts) AS ts_us, open, high, low, close, volume,"
        " vwap, trades, execution_id, CAST(date AS STRING) AS date FROM lake")
    extra = lake_rows.exceptAll(expected_df)
    lost = expected_df.exceptAll(lake_rows)
    n_extra, n_lost = extra.count(), lost.count()
    reason = ""
    if n_extra or n_lost:
        reason = f"{n_extra} rows only in the lake, {n_lost} only in EXPECTED"
        if n_extra:
            reason += f"; lake has {list(extra.first())}"
        if n_lost:
            reason += f"; EXPECTED has {list(lost.first())}"
    check(f"{name} every row equals EXPECTED ({len(want)} rows)", reason == "", reason)


def main() -> int:
    ap = argparse.ArgumentParser(description="Reads the silver lake with Apache Spark.")
    ap.add_argument("expected", help="JSON written by tests/e2e/test_e2e_replay.c")
    ap.add_argument("--s3-prefix", help="s3://BUCKET/PREFIX holding the lake's silver/ folder")
    args = ap.parse_args()

    datasets = load_expected(args.expected)
    check("datasets listed", len(datasets) > 0, "EXPECTED lists no files")
    s3 = None
    if args.s3_prefix and not args.s3_prefix.startswith("s3://"):
        ap.error("--s3-prefix must start with s3://")
    # A lake in a bucket (EXPECTED's paths are s3:// URIs, or --s3-prefix) is read through S3A.
    if args.s3_prefix or any(e["root"].startswith("s3://") for e in datasets.values()):
        s3 = s3_settings()
    with tempfile.TemporaryDirectory(prefix="check_spark.") as tmp:
        with open(os.path.join(tmp, "log4j2.properties"), "w", encoding="utf-8") as f:
            f.write(LOG4J2)
        spark = session(s3, tmp)
        try:
            zone = spark.sparkContext._jvm.java.util.TimeZone.getDefault().getID()
            print(f"# Spark {spark.version}, JVM default zone {zone},"
                  f" session zone {spark.conf.get('spark.sql.session.timeZone')}", flush=True)
            for name, entry in sorted(datasets.items()):
                if args.s3_prefix:
                    location = "s3a://" + args.s3_prefix[len("s3://"):].rstrip("/")
                elif entry["root"].startswith("s3://"):
                    location = "s3a://" + entry["root"][len("s3://"):]
                else:
                    location = entry["root"]
                location += f"/silver/{name}"
                try:
                    check_dataset(spark, name, location, entry["rows"])
                except Exception as exc:  # noqa: BLE001 - any reader failure is a failed check
                    check(f"{name} read {location}", False, reason_of(exc))
        finally:
            spark.stop()
    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
