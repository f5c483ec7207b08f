"""What scripts/check_modules.py and scripts/code_stats.py both need of Rust source: the workspace's
crates, the source with comments and literals blanked, and brace matching."""

import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Comments and literals: // line, /* block, raw string, string, char literal (not a lifetime).
TOKEN = re.compile(r"""//[^\n]*|/\*|\bb?r(#*)"|"(?:\\.|[^"\\])*"|'(?:\\(?:u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|.)|[^\\'\n])'""", re.S)
TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*([{;])")


def crate_dirs(with_src=False):
    """The workspace members (globs and `exclude` honoured) that have a Cargo.toml (and a src/ folder)."""
    ws = tomllib.loads((ROOT / "Cargo.toml").read_text())
    members = ws.get("workspace", {}).get("members", []) + (["."] if "package" in ws else [])
    excluded = {(ROOT / e).resolve() for e in ws.get("workspace", {}).get("exclude", [])}
    dirs = [d.resolve() for m in members for d in sorted(ROOT.glob(m))]
    return [
        d for d in dict.fromkeys(dirs) if d not in excluded and (d / "Cargo.toml").is_file() and (not with_src or (d / "src").is_dir())
    ]


def strip(src):
    """The source with comments and the insides of string and char literals blanked (offsets kept)."""
    out, i = list(src), 0
    while m := TOKEN.search(src, i):
        a, i = m.start(), m.end()
        if m.group() == "/*":  # block comments nest
            depth = 1
            while depth and i < len(src):
                step = src[i:i + 2]
                depth += (step == "/*") - (step == "*/")
                i += 2 if step in ("/*", "*/") else 1
        elif m.group(1) is not None:  # raw string r#"..."#
            close = src.find('"' + m.group(1), i)
            i = len(src) if close < 0 else close + 1 + len(m.group(1))
        lo, hi = (a, i) if m.group().startswith("/") else (a + 1, i - 1)
        out[lo:hi] = ["\n" if ch == "\n" else " " for ch in src[lo:hi]]
    return "".join(out)


def close_brace(code, i):
    """Index just past the `}` matching the `{` at code[i]."""
    depth = 0
    for j in range(i, len(code)):
        depth += {"{": 1, "}": -1}.get(code[j], 0)
        if depth == 0:
            return j + 1
    return len(code)
