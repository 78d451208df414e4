#!/usr/bin/env python3
"""Checks weft's levelization: the layers depend only downward, and no part includes one above it.

A part ("component") is a file stem within a layer: scheduler/poller.cpp and scheduler/poller.hpp
are the part `scheduler/poller`. Each public header is a part of its own (<weft/scheduler/io.hpp>):
it declares an API, which private files implement from any level.
Part A depends on part B when one of A's files includes one of B's. Two rules:

1. Layers: net -> primitives -> scheduler. A file may include public headers of its own layer or
   of a layer below, never above, and never another layer's private files.
2. Levels: the dependency graph between the parts of a layer has no cycle. A cycle means some
   file includes a header that (directly or not) includes the file's own part again, i.e. the
   part stands both below and above the other; the seam should be an interface below both
   (as poller_host and offload_host are).

Usage: check_levels.py <source root>. Prints each violation and exits 1, or prints a summary.
       check_levels.py --self-test: shows, on small trees of its own, that each rule fails when
       broken (so the check itself cannot silently pass everything).
"""
import os
import re
import sys

LAYERS = ["scheduler", "primitives", "net"]  # bottom to top

# Includes known to run upward, each with the work that removes it. They are left out of the
# cycle check; the check fails when one of them is gone, so that this list only ever shrinks.
KNOWN_UPWARD = {}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


def part_of(layer, relpath):
    """The part a file of `layer` belongs to: its stem, without include/weft/<layer>/."""
    stem = os.path.splitext(relpath)[0]
    prefix = f"include/weft/{layer}/"
    if stem.startswith(prefix):
        # A public header is a part of its own: it declares an API that may be implemented by
        # several private files, which may use the layer's private hub below it.
        return f"<weft/{layer}/{stem[len(prefix):]}>"
    return f"{layer}/{stem}"


def main(root):
    files = {}  # absolute path -> (layer, part)
    for layer in LAYERS:
        base = os.path.join(root, layer)
        for dirpath, _, names in os.walk(base):
            for name in names:
                if name.endswith((".hpp", ".cpp", ".h")):
                    path = os.path.normpath(os.path.join(dirpath, name))
                    files[path] = (layer, part_of(layer, os.path.relpath(path, base)))
    problems = []
    edges = {}
    seen_known = set()
    for path, (layer, part) in files.items():
        text = open(path, encoding="utf-8").read()
        for kind, target in INCLUDE.findall(text):
            resolved = None
            if kind == "<":
                m = re.match(r"weft/([a-z_]+)/(.*)$", target)
                if not m or m.group(1) not in LAYERS:
                    continue  # the standard library, a dependency, or weft/<umbrella>.hpp
                to_layer = m.group(1)
                resolved = os.path.normpath(os.path.join(root, to_layer, "include", target))
                if LAYERS.index(to_layer) > LAYERS.index(layer):
                    problems.append(f"{os.path.relpath(path, root)}: includes <{target}>, "
                                    f"a layer above {layer}")
            else:
                resolved = os.path.normpath(os.path.join(os.path.dirname(path), target))
                if resolved not in files:
                    continue
                to_layer = files[resolved][0]
                if to_layer != layer:
                    problems.append(f"{os.path.relpath(path, root)}: includes \"{target}\", a "
                                    f"private file of {to_layer}; use its public headers")
            key = (os.path.relpath(path, root), os.path.relpath(resolved, root))
            if key in KNOWN_UPWARD:
                seen_known.add(key)
                continue
            if resolved in files:
                to_part = files[resolved][1]
                if to_part != part and files[resolved][0] == layer:
                    edges.setdefault(part, set()).add(to_part)
    # Cycles: Tarjan's strongly connected components.
    index, low, stack, on_stack, sccs = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(sorted(scc))

    sys.setrecursionlimit(10000)
    for v in sorted({p for _, p in files.values()}):
        if v not in index:
            visit(v)
    for scc in sccs:
        problems.append("parts that include each other (a cycle): " + ", ".join(scc))
    for key in sorted(set(KNOWN_UPWARD) - seen_known):
        problems.append(f"{key[0]} no longer includes {key[1]}: remove it from KNOWN_UPWARD")
    if problems:
        print("\n".join(problems))
        return 1
    parts = len({p for _, p in files.values()})
    deps = sum(len(v) for v in edges.values())
    print(f"levelized: {len(files)} files in {parts} parts, {deps} dependencies between parts, "
          "no cycle and no upward include")
    for (src, dst), why in sorted(KNOWN_UPWARD.items()):
        print(f"known upward include, still to remove: {src} -> {dst}: {why}")
    return 0


def self_test():
    import contextlib
    import io
    import tempfile

    def tree(files):
        root = tempfile.mkdtemp(prefix="weft-levels-")
        for rel, text in files.items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return root

    def run(files):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(tree(files))
        return code, out.getvalue()

    cases = [
        ("a clean tree passes", {
            "scheduler/a.hpp": "", "scheduler/b.cpp": '#include "a.hpp"\n',
            "primitives/include/weft/primitives/p.hpp": "#include <weft/scheduler/s.hpp>\n",
            "scheduler/include/weft/scheduler/s.hpp": "",
        }, 0, "levelized"),
        ("a lower layer including a higher one fails", {
            "scheduler/a.cpp": "#include <weft/net/n.hpp>\n",
            "net/include/weft/net/n.hpp": "",
        }, 1, "a layer above"),
        ("a private file of another layer fails", {
            "primitives/p.cpp": '#include "../scheduler/hub.hpp"\n', "scheduler/hub.hpp": "",
        }, 1, "private file of scheduler"),
        ("two parts including each other fail", {
            "scheduler/hub.hpp": '#include "part.hpp"\n', "scheduler/part.hpp": "",
            "scheduler/part.cpp": '#include "hub.hpp"\n',
        }, 1, "a cycle"),
    ]
    failed = 0
    for name, files, want_code, want_text in cases:
        code, text = run(files)
        ok = code == want_code and want_text in text
        print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": exit {code}, output {text!r}"))
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--self-test":
        saved = dict(KNOWN_UPWARD)
        KNOWN_UPWARD.clear()
        code = self_test()
        KNOWN_UPWARD.update(saved)
        sys.exit(code)
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
