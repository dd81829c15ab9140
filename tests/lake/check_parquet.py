#!/usr/bin/env python3
"""Reads tickflow's Parquet files with readers that no one here wrote.

For every case that tests/unit/test_parquet.c wrote (DIR/index.json lists
them; DIR/NAME.json holds the values each NAME.parquet must hold):

- pyarrow: the schema (string, timestamp[us, tz=UTC], int64, double and
  their nullability), logical and converted types, every value and null,
  created_by, key_value_metadata, row groups and rows, the codec (ZSTD),
  encodings, and per column chunk the statistics (null_count, min and max
  as the spec defines them) read from ParquetFile.metadata;
- the byte layout: column chunks lie end to end from offset 4 to the footer,
  each total_compressed_size spans exactly its pages, each page header's
  sizes are right (every page is decompressed with pyarrow's ZSTD) and
  total_uncompressed_size adds up;
- DuckDB: read_parquet's column types and every value and null in file
  order, and the null counts and codec that parquet_metadata() reports.

Each check prints `ok - NAME` or `not ok - NAME: REASON`; the last line is
`N passed, N failed`, and the exit status is 1 when a check failed.

    .run/venv/bin/python tests/lake/check_parquet.py DIR
(DIR defaults to $TF_PQ_OUT.) tests/env/pyenv.sh makes the venv.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import struct
import sys
from pathlib import Path

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

ARROW_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "double": pa.float64(),
    "timestamp_us": pa.timestamp("us", tz="UTC"),
}
DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int64": "BIGINT",
    "double": "DOUBLE",
    "timestamp_us": "TIMESTAMP WITH TIME ZONE",
}
PHYSICAL = {"string": "BYTE_ARRAY", "int64": "INT64", "double": "DOUBLE", "timestamp_us": "INT64"}
LOGICAL = {"string": "STRING", "int64": "NONE", "double": "NONE", "timestamp_us": "TIMESTAMP"}
CONVERTED = {"string": "UTF8", "int64": "NONE", "double": "NONE", "timestamp_us": "TIMESTAMP_MICROS"}
# Columns whose chunks must be dictionary-encoded (repeating strings); every
# other column chunk must be PLAIN. dict_overflow passes the entry cap.
DICTIONARY = {
    "many": {"ticker", "symbol"},
    "patterns": {"small", "mid"},  # 2- and 9-bit indices; "wide" rarely repeats
    "wide_dict": {"key"},  # 16-bit indices
}


def check(name: str, ok: bool, reason: str = "") -> bool:
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print(f"ok - {name}")
    else:
        FAILED += 1
        print(f"not ok - {name}: {reason}")
    return ok


def guarded(name: str, fn) -> None:
    """Runs fn(); an exception counts as one failed check named name."""
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - any reader error is a finding
        check(name, False, f"{type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------
# Values


def bits(x: float) -> bytes:
    return struct.pack(">d", x)


def decode_double(hexbits: str | None) -> float | None:
    if hexbits is None:
        return None
    return struct.unpack(">d", bytes.fromhex(hexbits))[0]


def load_case(path: Path) -> dict:
    case = json.loads(path.read_text(encoding="utf-8"))
    for col in case["columns"]:
        if col["type"] == "double":
            col["values"] = [decode_double(v) for v in col["values"]]
    return case


def same(kind: str, a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if kind == "double":
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return bits(a) == bits(b)  # -0.0 differs from 0.0
    return a == b


def first_difference(kind: str, got: list, want: list) -> str:
    if len(got) != len(want):
        return f"{len(got)} values, want {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        if not same(kind, g, w):
            return f"row {i}: {g!r}, want {w!r}"
    return ""


def expected_stats(kind: str, values: list):
    """(null_count, min, max) as the writer must record them (min/max None when absent)."""
    nulls = sum(v is None for v in values)
    vals = [v for v in values if v is not None]
    if kind == "double":
        vals = [v for v in vals if not math.isnan(v)]
    if not vals:
        return nulls, None, None
    if kind == "string":
        raw = [v.encode("utf-8") for v in vals]
        return nulls, min(raw), max(raw)
    lo, hi = min(vals), max(vals)
    if kind == "double":
        # The spec writes a zero min as -0.0 and a zero max as +0.0.
        lo = -0.0 if lo == 0 else lo
        hi = 0.0 if hi == 0 else hi
    return nulls, lo, hi


# ---------------------------------------------------------------------------
# A minimal Thrift compact-protocol reader, only to walk page headers.


class Compact:
    def __init__(self, data: bytes, pos: int):
        self.data = data
        self.pos = pos

    def byte(self) -> int:
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, t: int):
        if t in (1, 2):
            return t == 1
        if t == 3:
            return self.byte()
        if t in (4, 5, 6):
            return self.zigzag()
        if t == 7:
            self.pos += 8
            return None
        if t == 8:
            n = self.varint()
            self.pos += n
            return self.data[self.pos - n : self.pos]
        if t in (9, 10):
            h = self.byte()
            n, et = h >> 4, h & 0x0F
            if n == 15:
                n = self.varint()
            return [self.value(et) for _ in range(n)]
        if t == 12:
            return self.struct()
        raise ValueError(f"thrift type {t} at {self.pos}")

    def struct(self) -> dict:
        out, last = {}, 0
        while True:
            h = self.byte()
            if h == 0:
                return out
            t, delta = h & 0x0F, h >> 4
            fid = last + delta if delta else self.zigzag()
            out[fid] = self.value(t)
            last = fid


def walk_pages(data: bytes, start: int, end: int) -> list[dict]:
    pages, pos = [], start
    while pos < end:
        r = Compact(data, pos)
        hdr = r.struct()
        hlen = r.pos - pos
        comp, unc = hdr[3], hdr[2]
        body = data[r.pos : r.pos + comp]
        plain = pa.decompress(body, decompressed_size=unc, codec="zstd", asbytes=True)
        pages.append(
            {
                "type": hdr[1],
                "header": hlen,
                "compressed": comp,
                "uncompressed": unc,
                "decompressed": len(plain),
                "num_values": (hdr.get(5) or hdr.get(7) or {}).get(1, 0),
                "encoding": (hdr.get(5) or hdr.get(7) or {}).get(2),
            }
        )
        pos = r.pos + comp
    if pos != end:
        raise ValueError(f"pages run to {pos}, chunk ends at {end}")
    return pages


# ---------------------------------------------------------------------------
# Checks


def check_arrow(name: str, path: Path, case: dict) -> None:
    cols = case["columns"]
    table = pq.read_table(path)
    fields = [(f.name, f.type, f.nullable) for f in table.schema]
    want = [(c["name"], ARROW_TYPES[c["type"]], c["optional"]) for c in cols]
    check(f"{name}: pyarrow schema", fields == want, f"{fields} != {want}")
    check(
        f"{name}: pyarrow num_rows",
        table.num_rows == case["num_rows"],
        f"{table.num_rows} != {case['num_rows']}",
    )
    for c in cols:
        col = table.column(c["name"])
        if c["type"] == "timestamp_us":
            col = col.cast(pa.int64())
        diff = first_difference(c["type"], col.to_pylist(), c["values"])
        check(f"{name}: pyarrow values of {c['name']}", not diff, diff)


def check_metadata(name: str, path: Path, case: dict) -> None:
    cols = case["columns"]
    pf = pq.ParquetFile(path)
    md = pf.metadata
    check(f"{name}: created_by", md.created_by == "tickflow", repr(md.created_by))
    check(
        f"{name}: row groups",
        md.num_row_groups == case["row_groups"] and md.num_rows == case["num_rows"],
        f"{md.num_row_groups} groups / {md.num_rows} rows, want "
        f"{case['row_groups']} / {case['num_rows']}",
    )
    kv = {k.decode(): v.decode() for k, v in (md.metadata or {}).items()}
    check(f"{name}: key_value_metadata", kv == case["kv"], f"{kv} != {case['kv']}")

    problems = []
    for i, c in enumerate(cols):
        sc = pf.schema.column(i)
        got = (sc.physical_type, sc.logical_type.type, sc.converted_type, sc.max_definition_level)
        want = (PHYSICAL[c["type"]], LOGICAL[c["type"]], CONVERTED[c["type"]], int(c["optional"]))
        if got != want:
            problems.append(f"{c['name']}: {got} != {want}")
        if c["type"] == "timestamp_us":
            lt = json.loads(sc.logical_type.to_json())
            if not (lt.get("isAdjustedToUTC") is True and lt.get("timeUnit") == "microseconds"):
                problems.append(f"{c['name']}: {lt}")
    check(f"{name}: physical, logical and converted types", not problems, "; ".join(problems))

    problems = []
    first = 0
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        rows = slice(first, first + rg.num_rows)
        first += rg.num_rows
        for i, c in enumerate(cols):
            cc = rg.column(i)
            where = f"group {g} {c['name']}"
            if cc.compression != "ZSTD":
                problems.append(f"{where}: codec {cc.compression}")
            want_dict = c["name"] in DICTIONARY.get(name, set())
            if cc.has_dictionary_page != want_dict:
                problems.append(f"{where}: dictionary {cc.has_dictionary_page}, want {want_dict}")
            if cc.num_values != rg.num_rows:
                problems.append(f"{where}: num_values {cc.num_values} != {rg.num_rows}")
            st = cc.statistics
            if not cc.is_stats_set or st is None:
                problems.append(f"{where}: no statistics")
                continue
            nulls, lo, hi = expected_stats(c["type"], c["values"][rows])
            if st.null_count != nulls:
                problems.append(f"{where}: null_count {st.null_count} != {nulls}")
            if st.has_min_max != (lo is not None):
                problems.append(f"{where}: has_min_max {st.has_min_max}, want {lo is not None}")
            elif lo is not None:
                if not (same(c["type"], st.min_raw, lo) and same(c["type"], st.max_raw, hi)):
                    problems.append(f"{where}: min/max {st.min_raw!r}/{st.max_raw!r} != {lo!r}/{hi!r}")
    check(
        f"{name}: statistics, codec and counts of {md.num_row_groups} row groups",
        not problems,
        "; ".join(problems[:5]),
    )


def check_layout(name: str, path: Path, case: dict) -> None:
    data = path.read_bytes()
    md = pq.ParquetFile(path).metadata
    footer_len = struct.unpack("<I", data[-8:-4])[0]
    footer_start = len(data) - 8 - footer_len
    check(
        f"{name}: PAR1 frame and file size",
        data[:4] == b"PAR1" and data[-4:] == b"PAR1" and len(data) == case["bytes"],
        f"{len(data)} bytes, sidecar says {case['bytes']}",
    )
    problems = []
    pos = 4
    npages = 0
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        group_unc = 0
        for i in range(md.num_columns):
            cc = rg.column(i)
            where = f"group {g} column {i}"
            start = cc.dictionary_page_offset if cc.has_dictionary_page else cc.data_page_offset
            if start != pos:
                problems.append(f"{where}: starts at {start}, previous ends at {pos}")
            end = start + cc.total_compressed_size
            pages = walk_pages(data, start, end)
            npages += len(pages)
            unc = sum(p["header"] + p["uncompressed"] for p in pages)
            group_unc += unc
            if unc != cc.total_uncompressed_size:
                problems.append(f"{where}: uncompressed {unc} != {cc.total_uncompressed_size}")
            if any(p["decompressed"] != p["uncompressed"] for p in pages):
                problems.append(f"{where}: a page decompresses to another size")
            dict_pages = [p for p in pages if p["type"] == 2]
            data_pages = [p for p in pages if p["type"] == 0]
            if len(dict_pages) != int(cc.has_dictionary_page) or (
                dict_pages and pages[0]["type"] != 2
            ):
                problems.append(f"{where}: dictionary pages {len(dict_pages)}")
            if sum(p["num_values"] for p in data_pages) != rg.num_rows:
                problems.append(f"{where}: data pages hold {sum(p['num_values'] for p in data_pages)} values")
            want_enc = 8 if cc.has_dictionary_page else 0
            if any(p["encoding"] != want_enc for p in data_pages):
                problems.append(f"{where}: data page encodings {[p['encoding'] for p in data_pages]}")
            pos = end
        if rg.total_byte_size != group_unc:
            problems.append(f"group {g}: total_byte_size {rg.total_byte_size} != {group_unc}")
    if pos != footer_start:
        problems.append(f"chunks end at {pos}, footer starts at {footer_start}")
    check(
        f"{name}: {npages} pages walked, sizes and offsets exact",
        not problems,
        "; ".join(problems[:5]),
    )


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def check_duckdb(name: str, path: Path, case: dict) -> None:
    cols = case["columns"]
    con = duckdb.connect()
    src = f"read_parquet({sql_str(str(path))}, file_row_number=true)"
    desc = con.execute(f"DESCRIBE SELECT * EXCLUDE (file_row_number) FROM {src}").fetchall()
    got = [(r[0], r[1]) for r in desc]
    want = [(c["name"], DUCKDB_TYPES[c["type"]]) for c in cols]
    check(f"{name}: duckdb column types", got == want, f"{got} != {want}")

    exprs = []
    for c in cols:
        q = '"' + c["name"].replace('"', '""') + '"'
        exprs.append(f"epoch_us({q})" if c["type"] == "timestamp_us" else q)
    rows = con.execute(f"SELECT {', '.join(exprs)} FROM {src} ORDER BY file_row_number").fetchall()
    check(
        f"{name}: duckdb row count",
        len(rows) == case["num_rows"],
        f"{len(rows)} != {case['num_rows']}",
    )
    for i, c in enumerate(cols):
        diff = first_difference(c["type"], [r[i] for r in rows], c["values"])
        check(f"{name}: duckdb values of {c['name']}", not diff, diff)

    meta = con.execute(
        "SELECT row_group_id, column_id, stats_null_count, compression, row_group_num_rows "
        f"FROM parquet_metadata({sql_str(str(path))}) ORDER BY row_group_id, column_id"
    ).fetchall()
    problems = []
    first = 0
    last_group = -1
    for group, col, nulls, codec, group_rows in meta:
        if group != last_group:
            if last_group >= 0:
                first += prev_rows
            last_group, prev_rows = group, group_rows
        c = cols[col]
        want_nulls = sum(v is None for v in c["values"][first : first + group_rows])
        if nulls != want_nulls or codec != "ZSTD":
            problems.append(f"group {group} {c['name']}: nulls {nulls} codec {codec}, want {want_nulls} ZSTD")
    want_chunks = case["row_groups"] * len(cols)
    if len(meta) != want_chunks:
        problems.append(f"{len(meta)} column chunks, want {want_chunks}")
    check(f"{name}: duckdb parquet_metadata null counts and codec", not problems, "; ".join(problems[:5]))


def literal(kind: str, v) -> str:
    if kind == "string":
        return sql_str(v)
    if kind == "double":
        return f"CAST({sql_str(repr(v))} AS DOUBLE)"
    if kind == "timestamp_us":
        when = datetime.datetime(1970, 1, 1) + datetime.timedelta(microseconds=v)
        return f"CAST({sql_str(when.isoformat(sep=' ') + '+00')} AS TIMESTAMPTZ)"
    return str(v)


def duck_ge(kind: str, v, t) -> bool:
    """v >= t as DuckDB compares: strings by bytes, NaN above every number."""
    if kind == "string":
        return v.encode("utf-8") >= t.encode("utf-8")
    if kind == "double" and math.isnan(v):
        return True
    return v >= t


def check_duckdb_filters(name: str, path: Path, case: dict) -> None:
    """Counts under a filter at each column's median: DuckDB skips row groups
    by their min/max, so wrong statistics would lose or keep rows wrongly."""
    con = duckdb.connect()
    src = f"read_parquet({sql_str(str(path))})"
    problems = []
    tried = 0
    for c in case["columns"]:
        kind = c["type"]
        vals = [v for v in c["values"] if v is not None]
        usable = [v for v in vals if not (kind == "double" and math.isnan(v))]
        if not usable:
            continue
        key = (lambda v: v.encode("utf-8")) if kind == "string" else None
        t = sorted(usable, key=key)[len(usable) // 2]
        q = '"' + c["name"].replace('"', '""') + '"'
        ge = sum(duck_ge(kind, v, t) for v in vals)
        got_ge = con.execute(f"SELECT count(*) FROM {src} WHERE {q} >= {literal(kind, t)}").fetchone()[0]
        got_lt = con.execute(f"SELECT count(*) FROM {src} WHERE {q} < {literal(kind, t)}").fetchone()[0]
        tried += 1
        if (got_ge, got_lt) != (ge, len(vals) - ge):
            problems.append(f"{c['name']} vs {t!r}: >= {got_ge}, < {got_lt}; want {ge}, {len(vals) - ge}")
    check(f"{name}: duckdb filtered counts on {tried} columns", not problems, "; ".join(problems[:5]))


def main() -> int:
    arg = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TF_PQ_OUT", "")
    if not arg:
        print("usage: check_parquet.py DIR (the folder test_parquet wrote)", file=sys.stderr)
        return 2
    folder = Path(arg)
    index = folder / "index.json"
    cases: list[str] = []
    if check("index.json present", index.is_file(), f"{index} missing (run test_parquet first)"):
        cases = json.loads(index.read_text())["cases"]
        check("cases listed", len(cases) >= 10, f"{len(cases)} cases")
    print(f"# pyarrow {pa.__version__}, duckdb {duckdb.__version__}")
    for name in cases:
        path = folder / f"{name}.parquet"
        sidecar = folder / f"{name}.json"
        if not check(f"{name}: files present", path.is_file() and sidecar.is_file(), "missing"):
            continue
        case = load_case(sidecar)
        guarded(f"{name}: pyarrow read", lambda: check_arrow(name, path, case))
        guarded(f"{name}: pyarrow metadata", lambda: check_metadata(name, path, case))
        guarded(f"{name}: layout", lambda: check_layout(name, path, case))
        guarded(f"{name}: duckdb read", lambda: check_duckdb(name, path, case))
        guarded(f"{name}: duckdb filters", lambda: check_duckdb_filters(name, path, case))
    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
