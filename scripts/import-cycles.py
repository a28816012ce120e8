#!/usr/bin/env python3
"""Fails when two files of src/ import each other, directly or round a
longer circle. An import is a `use` of a crate path or a path written in
code (`crate::a::b`, `super::x`, `self::y`); doc comments, comments and
string literals are not imports, and neither is a `mod` declaration or a
re-export (`pub use`): a module's public face names its children, which
may build on what their parent defines.

Usage: scripts/import-cycles.py [src-dir]
"""
import os
import re
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
SRC = os.path.normpath(SRC)


def module_of(path):
    """`src/a/b.rs` -> ("a", "b"); `src/a/mod.rs` -> ("a",); lib/main -> ()."""
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] == "mod" or (len(rel) == 1 and rel[0] in ("lib", "main")):
        rel = rel[:-1]
    return tuple(rel)


def strip(text):
    """Code without comments, string and char literals."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            i = n if end < 0 else end + 1 + len(hashes)
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]) or text.startswith("'\\u{", i):
            i = text.find("'", i + 2) + 1
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def use_paths(code):
    """Every path a file names, as lists of segments (use trees expanded)."""
    paths = []

    def expand(prefix, tree):
        tree = tree.strip()
        if not tree:
            return
        if "{" in tree and tree.endswith("}"):
            head, body = tree.split("{", 1)
            head = [s for s in head.strip().rstrip(":").split("::") if s]
            body = body[:-1]
            depth, part, parts = 0, "", []
            for ch in body:
                if ch == "," and depth == 0:
                    parts.append(part)
                    part = ""
                    continue
                depth += ch == "{"
                depth -= ch == "}"
                part += ch
            parts.append(part)
            for p in parts:
                expand(prefix + head, p)
        else:
            seg = [s.strip() for s in tree.split(" as ")[0].split("::") if s.strip()]
            paths.append(prefix + seg)

    for m in re.finditer(r"(\bpub(?:\([\w:]+\))?\s+)?\buse\s+([^;]+);", code):
        if not m.group(1):
            expand([], m.group(2))
    for m in re.finditer(r"(?<![\w:])((?:\w+)(?:::\w+)+)", re.sub(r"\buse\s+[^;]+;", "", code)):
        paths.append(m.group(1).split("::"))
    return paths


def main():
    files = {}
    for root, _, names in os.walk(SRC):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(root, name)
                files[module_of(path)] = path
    # A file's own module path: for `a/mod.rs` it is ("a",), for `a/b.rs` ("a","b").
    edges = {m: set() for m in files}
    for module, path in files.items():
        is_dir_module = os.path.basename(path) in ("mod.rs", "lib.rs", "main.rs")
        code = strip(open(path, encoding="utf-8").read())
        # Inline test modules import their parent by design.
        code = re.split(r"#\[cfg\(test\)\]\s*(?:pub(?:\([\w:]+\))?\s+)?mod tests\s*\{", code)[0]
        for segs in use_paths(code):
            if segs[0] == "crate":
                target, rest = (), segs[1:]
            elif segs[0] in ("super", "self"):
                base = list(module) if is_dir_module else list(module[:-1]) + [module[-1]]
                target = tuple(base)
                rest = segs
                while rest and rest[0] in ("super", "self"):
                    if rest[0] == "super":
                        target = target[:-1]
                    rest = rest[1:]
                # `self::x` in `a/b.rs` means a::b::x; `super` from a/b.rs is a.
            elif module + (segs[0],) in files:
                # A child module, named relative to this one.
                target, rest = module, segs
            else:
                continue
            # The longest prefix that is a file.
            best = None
            cur = tuple(target)
            if cur in files:
                best = cur
            for s in rest:
                cur = cur + (s,)
                if cur in files:
                    best = cur
                else:
                    break
            if best is not None and best != module and best != ():
                edges[module].add(best)
    # Circles: strongly connected components with more than one file.
    index, low, stack, on, comps = {}, {}, [], set(), []
    counter = [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            connect(v)
    if not comps:
        print(f"no import circle among {len(files)} files of {SRC}")
        return 0
    name = lambda m: os.path.relpath(files[m], os.path.dirname(SRC))
    for comp in comps:
        members = set(comp)
        print("import circle among:", ", ".join(sorted(name(m) for m in comp)))
        for v in sorted(comp):
            for w in sorted(edges[v] & members):
                print(f"  {name(v)} -> {name(w)}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
