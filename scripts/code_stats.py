#!/usr/bin/env python3
"""Size of the workspace's production Rust: lines per crate, the longest files, the longest functions.

Production code is every .rs file of a workspace member (the members listed in Cargo.toml; a member
nested inside another counts only for itself) except generated code (target/), files under a tests/ or
benches/ directory (so the `tests` crate, the test harness, counts as test code entirely), and
`#[cfg(test)] mod ... { }` blocks (and files declared by `#[cfg(test)] mod name;`). It prints:

  (a) non-blank lines per crate and each crate's share of the total (and, for reference, the excluded
      test lines of that crate);
  (b) the 10 longest production files (non-blank lines);
  (c) production functions longer than 70 lines, measured from the `fn` line to its closing brace.

    scripts/code_stats.py                 # plain text, aligned columns
    scripts/code_stats.py --json          # the same as JSON
    scripts/code_stats.py --fn-limit 50   # another threshold for (c)
"""

import argparse
import json
import re
from rust_source import ROOT, TEST_MOD, close_brace, crate_dirs, strip
from bisect import bisect_right

FN = re.compile(r"\bfn\s+(?:r#)?([A-Za-z_]\w*)")
TEST_DIRS = {"tests", "benches"}


def crate_files(crate):
    """(path, is_test_file) for the crate's .rs files (not those of a package nested in it), parents first."""
    paths = [p for p in crate.rglob("*.rs") if "target" not in p.relative_to(crate).parts
             and not any((d / "Cargo.toml").is_file() for d in p.parents if crate in d.parents)]
    paths.sort(key=lambda p: (len(p.parts) - (p.name == "mod.rs") / 2, p))  # before out-of-line children
    return [(p, bool(TEST_DIRS & set(p.relative_to(ROOT).parts[:-1]))) for p in paths]


def analyse(path, fn_limit):
    """(production lines, test lines, long functions, test files declared) of one production file."""
    text = path.read_text(encoding="utf-8", errors="replace")
    code, lines = strip(text), text.split("\n")
    starts = [0] + [k for k, ch in enumerate(code) if ch == "\n"]
    line_of = lambda k: bisect_right(starts, k)  # 1-based line of offset k
    test_lines, test_files = set(), set()
    for m in TEST_MOD.finditer(code):
        if m.group(2) == ";":
            owner = path.parent if path.name in ("lib.rs", "main.rs", "mod.rs") else path.with_suffix("")
            test_files |= {owner / f"{m.group(1)}.rs", owner / m.group(1)}
        else:
            end = close_brace(code, m.end() - 1)
            test_lines |= set(range(line_of(m.start()), line_of(end - 1) + 1))
            code = code[:m.start()] + re.sub(r"[^\n]", " ", code[m.start():end]) + code[end:]
    nonblank = {n for n, line in enumerate(lines, 1) if line.strip()}
    functions = []
    for m in FN.finditer(code):
        depth, k = 0, m.end()
        while k < len(code) and not (depth == 0 and code[k] in "{;"):
            depth += (code[k] in "([") - (code[k] in ")]")
            k += 1
        if k < len(code) and code[k] == "{":
            length = line_of(close_brace(code, k) - 1) - line_of(m.start()) + 1
            if length > fn_limit:
                functions.append({"file": str(path.relative_to(ROOT)), "line": line_of(m.start()),
                                  "name": m.group(1), "lines": length})
    return len(nonblank - test_lines), len(nonblank & test_lines), functions, test_files


def count_test_file(path):
    return sum(1 for line in path.read_text(encoding="utf-8", errors="replace").split("\n") if line.strip())


def collect(fn_limit):
    crates, files, functions = [], [], []
    for crate in crate_dirs():
        row = {"crate": str(crate.relative_to(ROOT)) if crate != ROOT else ".", "files": 0, "lines": 0, "test_lines": 0}
        skip = set()
        for path, is_test in crate_files(crate):
            if is_test or any(path == s or s in path.parents for s in skip):
                row["test_lines"] += count_test_file(path)
                continue
            prod, test, long_fns, test_files = analyse(path, fn_limit)
            skip |= test_files
            row["files"] += 1
            row["lines"] += prod
            row["test_lines"] += test
            files.append({"file": str(path.relative_to(ROOT)), "lines": prod})
            functions += long_fns
        crates.append(row)
    total = sum(r["lines"] for r in crates)
    for r in crates:
        r["share"] = round(100 * r["lines"] / total, 1) if total else 0.0
    crates.sort(key=lambda r: -r["lines"])
    files.sort(key=lambda f: (-f["lines"], f["file"]))
    functions.sort(key=lambda f: (-f["lines"], f["file"], f["line"]))
    return {"total_lines": total, "crates": crates, "longest_files": files[:10],
            "long_functions": {"limit": fn_limit, "count": len(functions), "functions": functions}}


def table(headers, rows):
    """Rows aligned under headers: text columns to the left, numbers to the right."""
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(re.fullmatch(r"[\d.]+", r[i]) for r in cells[1:]) for i in range(len(headers))]
    for r in cells:
        print("  " + "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric)).rstrip())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON")
    parser.add_argument("--fn-limit", type=int, default=70, help="report functions longer than this (70)")
    args = parser.parse_args()
    stats = collect(args.fn_limit)
    if args.json:
        print(json.dumps(stats, indent=2, ensure_ascii=False))
        return
    print(f"(a) production lines of Rust per crate (non-blank; tests/, benches/, #[cfg(test)] mod excluded): {stats['total_lines']}")
    table(["crate", "files", "lines", "share %", "test lines (excluded)"],
          [[r["crate"], r["files"], r["lines"], f"{r['share']:.1f}", r["test_lines"]] for r in stats["crates"]]
          + [["total", sum(r["files"] for r in stats["crates"]), stats["total_lines"], "100.0",
              sum(r["test_lines"] for r in stats["crates"])]])
    print("\n(b) the 10 longest production files (non-blank lines)")
    table(["file", "lines"], [[f["file"], f["lines"]] for f in stats["longest_files"]])
    fns = stats["long_functions"]
    print(f"\n(c) production functions over {fns['limit']} lines (fn line to closing brace): {fns['count']}")
    table(["file:line", "fn", "lines"], [[f"{f['file']}:{f['line']}", f["name"], f["lines"]] for f in fns["functions"]])


if __name__ == "__main__":
    main()
