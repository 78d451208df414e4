#!/usr/bin/env python3
"""Checks that every non-relaxed atomic operation in weft's sources says why its order suffices.

The rule (docs/architecture.md, "Atomics"): next to each operation with an acquire, release,
acq_rel or seq_cst order (explicit, or the default of a plain load/store/RMW on a std::atomic is
not checked here: weft names every order), a comment says what it pairs with. "Next to" means a
comment line among the few lines above the statement, or a comment on the statement's own lines,
that says "Ordering" or names the pairing ("pairs with", "paired with", "synchronizes with").
A comment at the field's declaration does not count: a reader of the operation should not have
to hunt for it, and one short line pointing at the declaration is enough.

Usage: check_atomics.py <source root> | --self-test
"""
import os
import re
import sys

LAYERS = ["scheduler", "primitives", "net"]
ORDER = re.compile(r"memory_order_(acquire|release|acq_rel|seq_cst|consume)\b")
ARGUED = re.compile(r"(?i)ordering|pair(s|ed)? with|synchroni[sz]es with")
WINDOW = 6  # lines above the operation's first line that may hold its comment


def code_of(line):
    return line.split("//", 1)[0]


def comment_of(line):
    return line.split("//", 1)[1] if "//" in line else ""


def check_text(text):
    """Line numbers (1-based) of unargued operations in `text`."""
    lines = text.split("\n")
    bad = []
    for i, line in enumerate(lines):
        if not ORDER.search(code_of(line)):
            continue
        # The statement may span lines: the operation's comment may sit above its first line.
        start = i
        while start > 0 and not re.search(r"[;{}]\s*$", code_of(lines[start - 1]).rstrip()) \
                and code_of(lines[start - 1]).strip() != "" and i - start < 4:
            start -= 1
        window = lines[max(0, start - WINDOW):i + 1]
        if not any(ARGUED.search(comment_of(l)) for l in window):
            bad.append(i + 1)
    return bad


def main(root):
    problems = []
    count = 0
    for layer in LAYERS:
        for dirpath, _, names in os.walk(os.path.join(root, layer)):
            for name in sorted(names):
                if not name.endswith((".hpp", ".cpp")):
                    continue
                path = os.path.join(dirpath, name)
                text = open(path, encoding="utf-8").read()
                count += sum(1 for l in text.split("\n") if ORDER.search(code_of(l)))
                for n in check_text(text):
                    line = text.split("\n")[n - 1].strip()
                    problems.append(f"{os.path.relpath(path, root)}:{n}: no ordering argument "
                                    f"next to: {line}")
    if problems:
        print("\n".join(problems))
        print(f"{len(problems)} of {count} non-relaxed atomic operations are not argued")
        return 1
    print(f"every one of {count} non-relaxed atomic operations says what it pairs with")
    return 0


def self_test():
    cases = [
        ("an operation with an Ordering comment above passes",
         "// Ordering: release, pairs with the reader's acquire.\nx.store(1, std::memory_order_release);\n", []),
        ("a trailing comment passes",
         "x.store(1, std::memory_order_release);  // pairs with take()'s acquire\n", []),
        ("a relaxed operation needs nothing", "x.store(1, std::memory_order_relaxed);\n", []),
        ("an unargued acquire fails", "int a = 0;\nint v = x.load(std::memory_order_acquire);\n", [2]),
        ("a comment too far above fails",
         "// Ordering: far away\n" + "f();\n" * 8 + "x.exchange(0, std::memory_order_acq_rel);\n",
         [10]),
    ]
    failed = 0
    for name, text, want in cases:
        got = check_text(text)
        ok = got == want
        print(("ok   " if ok else "FAIL ") + name + ("" if ok else f": got {got}, want {want}"))
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--self-test":
        sys.exit(self_test())
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "."))
