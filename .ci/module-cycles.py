#!/usr/bin/env python3
"""Finds dependency cycles between the top-level modules of each crate.

A module (`foo.rs` or `foo/mod.rs`, with everything under `foo/`) depends on another when its
code names it: `crate::other`, `use crate::{other, ...}`, or, in a top-level module,
`super::other`. Comments and doc comments (including intra-doc links) do not count, nor does a
trailing `#[cfg(test)] mod tests` block. Prints every strongly connected component of two or
more modules, and exits 1 if there is one.

Usage: module-cycles.py [CRATE_DIR ...]   (default: every crates/*/ that has a src/)
"""
import os
import re
import sys


def strip_comments(text):
    # Block comments, then line comments (doc comments included). String literals that contain
    # "//" would be cut short, which only ever removes text, never invents a dependency.
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def without_test_module(text):
    m = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    return text[: m.start()] if m else text


def top_module(src, path):
    rel = os.path.relpath(path, src)
    parts = rel.split(os.sep)
    if len(parts) == 1:
        name = parts[0][:-3]
        return None if name in ("lib", "main") else name
    if parts[0] == "bin":
        return None
    return parts[0]


def names_in_group(group):
    """Top-level names in a `{a, b::c, d::{e}}` use group."""
    names, depth, current = [], 0, ""
    for ch in group:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            names.append(current)
            current = ""
            continue
        if depth == 0:
            current += ch
    names.append(current)
    out = []
    for n in names:
        n = n.strip()
        if not n:
            continue
        head = re.match(r"(\w+)", n)
        if head:
            out.append(head.group(1))
    return out


def group_after(text, start):
    """The text of the balanced `{...}` group opening at text[start]."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    return ""


def deps_of(text, nested):
    deps = set()
    prefixes = ["crate"] if nested else ["crate", "super"]
    for prefix in prefixes:
        for m in re.finditer(r"\b" + prefix + r"::(\{|\w+)", text):
            if m.group(1) == "{":
                deps.update(names_in_group(group_after(text, m.start(1))))
            else:
                deps.add(m.group(1))
    return deps


def scc(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
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
            out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def check_crate(crate):
    src = os.path.join(crate, "src")
    graph = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            module = top_module(src, path)
            if module is None:
                continue
            nested = os.path.dirname(os.path.relpath(path, src)) != ""
            text = without_test_module(strip_comments(open(path, encoding="utf-8").read()))
            graph.setdefault(module, set())
            for dep in deps_of(text, nested):
                if dep != module:
                    graph[module].add(dep)
    modules = set(graph)
    graph = {m: {d for d in ds if d in modules} for m, ds in graph.items()}
    return [c for c in scc(graph) if len(c) > 1]


def main():
    crates = sys.argv[1:] or sorted(
        os.path.join("crates", d)
        for d in os.listdir("crates")
        if os.path.isdir(os.path.join("crates", d, "src"))
    )
    found = False
    for crate in crates:
        for comp in check_crate(crate):
            found = True
            print(f"{crate}: module cycle: {', '.join(comp)}")
    if not found:
        print(f"no module cycles in {len(crates)} crates")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
