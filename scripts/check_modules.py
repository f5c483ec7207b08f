#!/usr/bin/env python3
"""Fails when the top-level modules of a workspace crate depend on each other in a cycle.

For every crate of the workspace (the members listed in Cargo.toml that have a src/ folder) it reads the
crate's src/**/*.rs and builds a graph between the crate's top-level modules (src/x.rs or src/x/ is
module x; its submodules belong to x): an edge a -> b exists when code in a names `crate::b...` (in a
`use` tree or inline, e.g. `crate::supervision::flags(..)`), or reaches b through `super::`/`self::`.
A name re-exported by the crate root (`pub use settle::Clearinghouse;` then `crate::Clearinghouse`)
counts as its module. Comments, strings and `#[cfg(test)] mod ... { }` blocks are ignored, and so are
the crate roots themselves (lib.rs, main.rs, src/bin/) and generated code (target/, OUT_DIR includes).

Every strongly connected component of more than one module is reported with one example line per edge,
and the exit status is 1; otherwise it prints "no module cycles in N crates" and exits 0.

It also keeps the wire at the edge of clearing-service: the protobuf types (`proto::`, `pb::`) may be
named only by the rooms in WIRE_ROOMS (the gRPC services, the server, the adapter hop, and `record.rs`,
the stored formats that are protobuf encodings); any other production file that names them fails.
And it keeps the store's generic operations (`clearing_store::backend::Primitives`: put_once, map_*,
*_records, ...) inside the store crate and its conformance tests: features use the typed traits.

    scripts/check_modules.py            # check
    scripts/check_modules.py --graph    # also print every crate's edges
"""

import argparse
import re
import sys
from rust_source import ROOT, TEST_MOD, close_brace, crate_dirs, strip
from bisect import bisect_right

INLINE_MOD = re.compile(r"\bmod\s+(\w+)\s*\{")
PATH_START = re.compile(r"\b(crate|super|self)\s*::")
USE = re.compile(r"\buse\s+")
WS, SEP, IDENT, ALIAS = (re.compile(r) for r in (r"\s*", r"\s*::(?!\s*<)", r"(?:r#)?([A-Za-z_]\w*)", r"\s+as\s+(\w+)"))








def parse_tree(s, i):
    """Parse the path or use-tree at s[i:]; return ([(segments, alias)], end index)."""
    segs = []
    while True:
        i = WS.match(s, i).end()
        if s.startswith("{", i):
            items, i = [], i + 1
            while not s.startswith("}", i) and i < len(s):
                sub, i = parse_tree(s, i)
                items += [(segs + p, a) for p, a in sub]
                i = WS.match(s, i).end()
                if not s.startswith(",", i):
                    break
                i = WS.match(s, i + 1).end()
            return items, i + 1
        if s.startswith("*", i):
            return [(segs + ["*"], None)], i + 1
        m = IDENT.match(s, i)
        if not m:
            return ([(segs, segs[-1])] if segs else []), i
        segs, i = segs + [m.group(1)], m.end()
        sep = SEP.match(s, i)
        if not sep:
            break
        i = sep.end()
    if segs[-1] == "self":
        segs = segs[:-1]
    alias = ALIAS.match(s, i)
    return [(segs, alias.group(1) if alias else (segs[-1] if segs else None))], alias.end() if alias else i


def resolve(segs, base):
    """The absolute module path named by a `crate::`/`super::`/`self::` path used in module `base`."""
    path = [] if segs[0] == "crate" else list(base)
    segs = segs[1:] if segs[0] == "crate" else segs
    while segs and segs[0] in ("self", "super"):
        path, segs = (path[:-1] if segs[0] == "super" else path), segs[1:]
    return path + segs


def scan_crate(crate):
    """The edges {(a, b): (file, line, text)} between the top-level modules of one crate."""
    src, files, skip = crate / "src", {}, set()
    # Parents before their out-of-line children, so that a `#[cfg(test)] mod tests;` file is skipped.
    paths = [p for p in src.rglob("*.rs") if "target" not in p.relative_to(crate).parts]
    for path in sorted(paths, key=lambda p: (len(p.parts) - (p.name == "mod.rs") / 2, p)):
        if any(path == s or s in path.parents for s in skip):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        code = re.sub(r"pub\s*\(\s*in\s+[^)]*\)", lambda m: " " * len(m.group()), strip(text))
        for m in TEST_MOD.finditer(code):
            if m.group(2) == ";":
                owner = path.parent if path.name in ("lib.rs", "main.rs", "mod.rs") else path.with_suffix("")
                skip |= {owner / f"{m.group(1)}.rs", owner / m.group(1)}
            else:
                end = close_brace(code, m.end() - 1)
                code = code[:m.start()] + re.sub(r"[^\n]", " ", code[m.start():end]) + code[end:]
        rel = path.relative_to(src).with_suffix("").parts
        base = [] if rel[0] == "bin" or rel in (("lib",), ("main",)) else list(rel[:-1] if rel[-1] == "mod" else rel)
        mods = [(m.start(), close_brace(code, m.end() - 1), m.group(1)) for m in INLINE_MOD.finditer(code)]
        starts = [0] + [k for k, ch in enumerate(code) if ch == "\n"]
        files[path] = (text.split("\n"), code, base, mods, starts)

    def base_at(f, k):
        _, _, base, mods, _ = files[f]
        return base + [name for a, b, name in mods if a < k < b]

    modules = {p.stem if p.is_file() else p.name for p in src.iterdir()
               if p.name != "bin" and (p.suffix == ".rs" and p.stem not in ("lib", "main") or p.is_dir())}
    roots = [f for f, v in files.items() if not v[2]]
    modules |= {name for f in roots for a, b, name in files[f][3] if not base_at(f, a)}
    reexports = {}
    for f in roots:
        for m in USE.finditer(files[f][1]):
            if not base_at(f, m.start()):
                for segs, alias in parse_tree(files[f][1], m.end())[0]:
                    full = resolve(segs, []) if segs else []
                    if len(full) > 1 and full[0] in modules and alias and full[-1] != "*":
                        reexports[alias] = full[0]
    edges = {}
    for f, (lines, code, _, _, starts) in files.items():
        consumed = 0
        for m in PATH_START.finditer(code):
            if m.start() < consumed:
                continue
            trees, consumed = parse_tree(code, m.start())
            base = base_at(f, m.start())
            for segs, _ in trees:
                full = resolve(segs, base) if segs else []
                target = (full[0] if full[0] in modules else reexports.get(full[0])) if full else None
                if base and target and target != base[0] and (base[0], target) not in edges:
                    line = bisect_right(starts, m.start())
                    edges[(base[0], target)] = (f.relative_to(ROOT), line, lines[line - 1].strip())
    return edges


def reach(graph, v):
    """{w: shortest path [v, ..., w]} for every module w reachable from v (v itself only through a cycle)."""
    paths, queue = {}, [[v]]
    for path in queue:
        for w in sorted(graph.get(path[-1], ())):
            if w not in paths:
                paths[w] = path + [w]
                queue.append(path + [w])
    return paths


def cycles(edges):
    """[(modules, one shortest cycle)] for every strongly connected component of more than one module."""
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    reaches = {v: reach(graph, v) for v in graph}
    comps = {tuple(sorted(w for w in reaches[v] if v in reaches.get(w, {}))) for v in graph if v in reaches[v]}
    return [(list(c), reaches[c[0]][c[0]]) for c in sorted(comps) if len(c) > 1]


def test_spans(code):
    """(start, end) of every inline `#[cfg(test)] mod … { }` of stripped source."""
    return [(m.start(), close_brace(code, m.end() - 1)) for m in TEST_MOD.finditer(code) if m.group(2) == "{"]


# clearing-service files (relative to its src/) that may name protobuf types; see the docstring.
WIRE_CRATE = "clearing/service"
WIRE_ROOMS = ("grpc/", "server.rs", "record.rs", "routing/")
PROTO = re.compile(r"\b(?:proto|prost|pb)\b")


def wire_outside_edge():
    """(file, line, text) of every production use of protobuf types in clearing-service outside WIRE_ROOMS."""
    src = ROOT / WIRE_CRATE / "src"
    found = []
    for f in sorted(src.rglob("*.rs")):
        rel = f.relative_to(src).as_posix()
        if rel.startswith(WIRE_ROOMS):
            continue
        text = f.read_text()
        code = strip(text)
        tests = test_spans(code)
        for m in PROTO.finditer(code):
            if any(a <= m.start() < b for a, b in tests):
                continue
            line = code.count("\n", 0, m.start()) + 1
            found.append((f"{WIRE_CRATE}/src/{rel}", line, text.splitlines()[line - 1].strip()))
    return found


# The store's generic operations (clearing_store::backend::Primitives): only the store crate and the
# conformance tests call them; every feature goes through the typed traits.
PRIMITIVES = re.compile(
    r"(?:\.|::)\s*(put_once|get_meta|map_set|map_get|map_get_field|get_records|put_records|record_keys)\s*[(:<]|\bbackend\s*::|\bPrimitives\b"
)
PRIMITIVE_CALLERS = ("clearing/store/", "tests/tests/store_conformance.rs")


def primitives_outside_store():
    """(file, line, text) of every call of a store primitive outside PRIMITIVE_CALLERS."""
    found, files = [], sorted({f for crate in crate_dirs(with_src=True) for f in crate.rglob("*.rs")})
    for f in files:
        rel = f.relative_to(ROOT).as_posix()
        if rel.startswith(PRIMITIVE_CALLERS) or "/target/" in f"/{rel}":
            continue
        text = f.read_text()
        code = strip(text)
        tests = test_spans(code)
        for m in PRIMITIVES.finditer(code):
            if any(a <= m.start() < b for a, b in tests):
                continue
            line = code.count("\n", 0, m.start()) + 1
            if (rel, line) not in {(f, n) for f, n, _ in found}:
                found.append((rel, line, text.splitlines()[line - 1].strip()))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", action="store_true", help="print each crate's module edges")
    args = parser.parse_args()
    crates, found = crate_dirs(with_src=True), 0
    for crate in crates:
        name = str(crate.relative_to(ROOT)) if crate != ROOT else "."
        edges = scan_crate(crate)
        if args.graph:
            print(f"{name}: {len(edges)} edges")
            for (a, b), (f, line, _) in sorted(edges.items()):
                print(f"  {a:>14} -> {b:<14} {f}:{line}")
        for comp, example in cycles(edges):
            found += 1
            print(f"{name}: module cycle among {', '.join(comp)} (e.g. {' -> '.join(example)})")
            for (a, b), (f, line, text) in sorted(edges.items()):
                if a in comp and b in comp:
                    print(f"  {a} -> {b}  {f}:{line}  {text}")
    if found:
        print(f"{found} module cycle(s) in {len(crates)} crates")
    wire = wire_outside_edge()
    for f, line, text in wire:
        print(f"{f}:{line}: protobuf outside the wire rooms ({', '.join(WIRE_ROOMS)}): {text}")
    prims = primitives_outside_store()
    for f, line, text in prims:
        print(f"{f}:{line}: a store primitive outside clearing-store (use the typed traits of clearing_store::features): {text}")
    if found or wire or prims:
        return 1
    print(f"no module cycles in {len(crates)} crates; protobuf only in clearing-service's wire rooms; store primitives only in the store")
    return 0


if __name__ == "__main__":
    sys.exit(main())
