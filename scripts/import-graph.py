#!/usr/bin/env python3
"""Prints which top-level modules of src/ each module imports (`crate::x`),
test code left out, as tests/layering.rs reads them:

    python3 scripts/import-graph.py
"""
import os
import re
import sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
graph = {}
for dirpath, _, files in os.walk(root):
    for name in files:
        if not name.endswith(".rs"):
            continue
        path = os.path.join(dirpath, name)
        rel = os.path.relpath(path, root)
        parts = rel.split(os.sep)
        if name in ("tests.rs", "testutil.rs") or name.endswith("_tests.rs") or "tests" in parts[:-1]:
            continue
        module = parts[0][:-3] if parts[0].endswith(".rs") else parts[0]
        if module in ("lib", "main"):
            continue
        src = open(path, encoding="utf-8").read()
        cut = re.search(r"\n#\[cfg\(test\)\]\n(pub\(crate\) )?mod \w+ \{", src)
        if cut:
            src = src[: cut.start()]
        for used in re.findall(r"crate::(\w+)", src):
            if used != module:
                graph.setdefault(module, set()).add(used)
for module in sorted(graph):
    print(f"{module} -> {' '.join(sorted(graph[module]))}")
sys.exit(0)
