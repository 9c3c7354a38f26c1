#!/usr/bin/env python3
"""Prints the code-shape measures of the refactoring issue for src/: the longest
functions, how many functions exceed 80 lines, how often `Result<_, String>` appears, and
the lines of main.rs and of the composition root. Functions are found by their `fn`
line and matched braces (strings and comments skipped), good enough for rustfmt-ed code.
Test code (a `tests.rs` file, or a `#[cfg(test)] mod` to the end of its file) is
measured apart: a table-driven test is long by design.

    scripts/code-measures.py [SRC_DIR]"""
import pathlib
import re
import sys

src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "src")
fn_re = re.compile(r"^\s*(pub(\([a-z]+\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def strip(line):
    """The line without string literals and // comments (for brace counting)."""
    out, i, in_str = [], 0, False
    while i < len(line):
        c = line[i]
        if in_str:
            if c == "\\":
                i += 2
                continue
            if c == '"':
                in_str = False
        else:
            if c == '"':
                in_str = True
            elif line.startswith("//", i):
                break
            elif c == "'" and i + 2 < len(line) and line[i + 2] == "'":
                i += 3
                continue
            else:
                out.append(c)
        i += 1
    return "".join(out)


functions = []
tests = []
string_results = 0
for path in sorted(src.rglob("*.rs")):
    lines = path.read_text().splitlines()
    test_from = 0 if path.name == "tests.rs" else next(
        (k for k in range(len(lines) - 1)
         if lines[k].strip() == "#[cfg(test)]" and lines[k + 1].lstrip().startswith(("mod ", "pub(crate) mod "))
         and "{" in lines[k + 1]),
        len(lines),
    )
    string_results += 0 if path.name in ("main.rs", "cli.rs") else sum(len(re.findall(r"Result<(?:[^<>]|<(?:[^<>]|<[^<>]*>)*>)*?,\s*String>", l)) for l in lines)
    i = 0
    while i < len(lines):
        m = fn_re.match(lines[i])
        if m:
            depth, started, j = 0, False, i
            while j < len(lines):
                s = strip(lines[j])
                if not started and ";" in s and "{" not in s:
                    break  # a declaration without a body
                depth += s.count("{") - s.count("}")
                if "{" in s:
                    started = True
                if started and depth <= 0:
                    where = f"{path.relative_to(src.parent)}:{i + 1}"
                    (tests if i >= test_from else functions).append((j - i + 1, where, m.group(6)))
                    break
                j += 1
        i += 1

functions.sort(reverse=True)
tests.sort(reverse=True)
print("longest functions (not tests):")
for n, where, name in functions[:10]:
    print(f"  {n:4} {where} {name}")
print(f"functions over 80 lines (not tests): {sum(1 for f in functions if f[0] > 80)}")
print(f"test functions in src over 80 lines: {sum(1 for f in tests if f[0] > 80)}"
      + (f" (longest: {tests[0][0]} {tests[0][1]} {tests[0][2]})" if tests else ""))
print(f"Result<_, String> in src outside the binary (main.rs, cli.rs): {string_results}")
for f in ["main.rs", "serve.rs", "server.rs"]:
    p = src / f
    if p.exists():
        print(f"lines in {f}: {len(p.read_text().splitlines())}")
