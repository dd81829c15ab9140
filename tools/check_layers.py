#!/usr/bin/env python3
"""Checks that the source tree keeps the layers common/README.md describes.

    python3 tools/check_layers.py [BUILD]

From the sources:
  - a file of common/<layer>/ includes public headers (tf/*.h) of its own
    layer or of a layer below it, never of one above;
  - common's internal headers (common/<layer>/*.h) are included only by
    the files beside them, never by a service, a test or a benchmark;
  - a service includes no other service's files;
  - no include cycle among common's headers.
From the objects in BUILD/obj (when they are there):
  - no common object calls into a layer above its own;
  - no cycle of calls among common's objects (a calls b and b calls a,
    directly or through others).

Prints a line per check, "ok - ..." or "not ok - ...", and a closing
"N passed, N failed" line; exits 1 when a check failed.
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["base", "codec", "io", "control", "runtime"]
SERVICES = ["extract", "transform", "aggregate", "marketsim"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

passed = failed = 0


def check(ok: bool, what: str, detail: str = "") -> None:
    global passed, failed
    if ok:
        passed += 1
        print(f"ok - {what}")
    else:
        failed += 1
        print(f"not ok - {what}")
        for line in detail.splitlines():
            print(f"#   {line}")


def includes(path: Path) -> list[str]:
    return INCLUDE.findall(path.read_text(encoding="utf-8", errors="replace"))


def header_layers() -> dict[str, str]:
    """tf/<name>.h -> the layer whose include/ holds it."""
    out = {}
    for layer in LAYERS:
        for h in sorted((ROOT / "common" / layer / "include" / "tf").glob("*.h")):
            out[f"tf/{h.name}"] = layer
    return out


def common_files(layer: str) -> list[Path]:
    d = ROOT / "common" / layer
    return sorted(list(d.glob("*.[ch]")) + list((d / "include" / "tf").glob("*.h")))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of graph with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(n: str) -> None:
        index[n] = low[n] = len(index)
        stack.append(n)
        on.add(n)
        for m in sorted(graph.get(n, ())):
            if m not in index:
                visit(m)
                low[n] = min(low[n], low[m])
            elif m in on:
                low[n] = min(low[n], index[m])
        if low[n] == index[n]:
            part = []
            while True:
                m = stack.pop()
                on.discard(m)
                part.append(m)
                if m == n:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for n in sorted(graph):
        if n not in index:
            visit(n)
    return out


def check_sources() -> None:
    where = header_layers()
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    for layer in LAYERS:
        bad = []
        for f in common_files(layer):
            for inc in includes(f):
                if inc.startswith("tf/"):
                    if inc not in where:
                        bad.append(f"{f.relative_to(ROOT)}: {inc} is no public header")
                    elif rank[where[inc]] > rank[layer]:
                        bad.append(f"{f.relative_to(ROOT)}: {inc} is of {where[inc]}, above {layer}")
                elif "/" in inc or not (f.parent / inc).is_file():
                    if not (f.parent / inc).is_file():
                        bad.append(f"{f.relative_to(ROOT)}: {inc} is not beside it")
        check(not bad, f"common/{layer} includes only its own layer and those below", "\n".join(bad))

    internal = {h.name for layer in LAYERS for h in (ROOT / "common" / layer).glob("*.h")}
    bad = []
    outside = [p for d in ("services", "tests", "bench") for p in sorted((ROOT / d).rglob("*.[ch]"))]
    for f in outside:
        for inc in includes(f):
            if Path(inc).name in internal and "common/" in inc:
                bad.append(f"{f.relative_to(ROOT)}: {inc}")
    check(not bad, "common's internal headers are reached only beside them", "\n".join(bad))

    bad = []
    for svc in SERVICES:
        others = [s for s in SERVICES if s != svc]
        for f in sorted((ROOT / "services" / svc).glob("*.[ch]")):
            for inc in includes(f):
                if any(o in Path(inc).parts for o in others) or ".." in inc:
                    bad.append(f"{f.relative_to(ROOT)}: {inc}")
    check(not bad, "a service includes no other service's files", "\n".join(bad))

    graph: dict[str, set[str]] = {}
    for layer in LAYERS:
        for f in common_files(layer):
            key = str(f.relative_to(ROOT))
            edges = set()
            for inc in includes(f):
                if inc in where:
                    edges.add(f"common/{where[inc]}/include/{inc}")
                elif (f.parent / inc).is_file():
                    edges.add(str((f.parent / inc).relative_to(ROOT)))
            graph[key] = edges
    found = cycles(graph)
    check(not found, "no include cycle among common's files", "\n".join(" <-> ".join(c) for c in found))


def symbols(obj: Path) -> tuple[set[str], set[str]]:
    out = subprocess.run(["nm", "-P", str(obj)], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind in "TDBRC" or kind in "WV":
            defined.add(name)
    return defined, undefined


def check_objects(build: Path) -> None:
    objs = {}
    for layer in LAYERS:
        for o in sorted((build / "obj" / "common" / layer).glob("*.o")):
            objs[f"{layer}/{o.stem}"] = symbols(o)
    if not objs:
        print(f"# no objects in {build}/obj/common: call checks skipped")
        return
    owner = {}
    for name, (defined, _) in objs.items():
        for s in defined:
            owner[s] = name
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    graph: dict[str, set[str]] = {n: set() for n in objs}
    bad = []
    for name, (_, undefined) in objs.items():
        for s in undefined:
            o = owner.get(s)
            if o and o != name:
                graph[name].add(o)
                if rank[o.split("/")[0]] > rank[name.split("/")[0]]:
                    bad.append(f"{name} calls {s} of {o}")
    check(not bad, "no common object calls into a layer above its own", "\n".join(sorted(bad)))
    found = cycles(graph)
    check(not found, "no call cycle among common's objects", "\n".join(" <-> ".join(c) for c in found))


def main() -> int:
    build = ROOT / (sys.argv[1] if len(sys.argv) > 1 else "build")
    check_sources()
    check_objects(build)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
