#!/usr/bin/env python3
"""Checks hakmem's layer order and who writes which part of a slab descriptor.

    scripts/check_layers.py [--root DIR] [--self-test]

Layers are the folders of src/, bottom to top, in the order of the Makefile's
LAYERS line (docs/ARCHITECTURE.md explains each). A file may include headers
of its own layer and of the layers below it, and the public include/hakmem.h.
A slab descriptor (src/backend/superslab.h) has four parts, each written by
one module only: a write elsewhere is an error.

Prints one line per violation and exits 1 if there is any; --self-test checks
that the checker itself catches an upward include and a foreign write.
"""
import argparse
import pathlib
import re
import shutil
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
PUBLIC = {"hakmem.h"}
# part of hak_slab_t -> the only files that may write it
PART_WRITERS = {
    "geo": {"src/backend/superslab.c", "src/backend/superslab.h"},
    "tc": {"src/frontend/heap.c", "src/frontend/purge.c"},
    "rem": {"src/frontend/heap.c"},
    "pool": {"src/backend/shared_pool.c"},
}
FIELD = r"->(geo|tc|rem|pool)\.\w+(?:\[[^\]]*\])?"
WRITES = [
    re.compile(FIELD + r"\s*(?:[-+*/|&^]?=(?!=)|\+\+|--)"),
    re.compile(r"(?:\+\+|--)\s*\w+" + FIELD),
    re.compile(r"atomic_(?:store|exchange|compare_exchange_\w+|fetch_\w+)(?:_explicit)?\(\s*&\s*\w+(?:\[[^\]]*\])?" + FIELD),
]


def layers(root):
    text = (root / "Makefile").read_text()
    m = re.search(r"^LAYERS\s*:?=\s*(.+)$", text, re.M)
    if not m:
        raise SystemExit("check_layers: no LAYERS line in the Makefile")
    return m.group(1).split()


def check(root):
    order = layers(root)
    rank = {name: i for i, name in enumerate(order)}
    errors = []
    src = root / "src"
    for path in sorted(src.rglob("*.[ch]")):
        rel = path.relative_to(root).as_posix()
        parts = path.relative_to(src).parts
        if len(parts) != 2 or parts[0] not in rank:
            errors.append(f"{rel}: not inside a layer folder ({', '.join(order)})")
            continue
        mine = parts[0]
        text = path.read_text()
        for lineno, line in enumerate(text.splitlines(), 1):
            m = INCLUDE.match(line)
            if m:
                inc = m.group(1)
                if inc in PUBLIC:
                    continue
                layer = inc.split("/")[0] if "/" in inc else None
                if layer not in rank:
                    errors.append(f"{rel}:{lineno}: includes \"{inc}\", which names no layer")
                elif rank[layer] > rank[mine]:
                    errors.append(f"{rel}:{lineno}: {mine} includes \"{inc}\" from the {layer} layer above it")
            for pat in WRITES:
                for w in pat.finditer(line):
                    part = w.group(1)
                    if rel not in PART_WRITERS[part]:
                        owners = ", ".join(sorted(PART_WRITERS[part]))
                        errors.append(f"{rel}:{lineno}: writes the slab descriptor's {part} part, which only {owners} may write")
    return errors


def self_test(root):
    """Copies src/ and the Makefile, breaks each rule once, expects a complaint."""
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        t = pathlib.Path(tmp)
        shutil.copytree(root / "src", t / "src")
        shutil.copy(root / "Makefile", t / "Makefile")
        if check(t):
            print("self-test: the copy of the tree is not clean to begin with")
            return False
        cases = [
            ("src/base/config.c", '#include "frontend/heap.h"\n', "includes \"frontend/heap.h\" from the frontend layer"),
            ("src/os/os.c", '#include "heap.h"\n', "names no layer"),
            ("src/backend/shared_pool.c", "static void x_(hak_slab_t *s) { s->tc.used = 0; }\n", "tc part"),
            ("src/frontend/heap.c", "static void y_(hak_slab_t *s) { atomic_store_explicit(&s->pool.next, 0, memory_order_relaxed); }\n", "pool part"),
        ]
        for rel, line, want in cases:
            f = t / rel
            before = f.read_text()
            f.write_text(before + line)
            found = [e for e in check(t) if want in e]
            f.write_text(before)
            print(f"self-test: {rel} + {line.strip()!r}: {'caught' if found else 'NOT caught'}")
            ok &= bool(found)
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=pathlib.Path(__file__).resolve().parent.parent, type=pathlib.Path)
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    errors = check(args.root)
    for e in errors:
        print(e)
    ok = not errors
    if args.self_test:
        ok &= self_test(args.root)
    print(f"check_layers: {'ok' if ok else 'FAILED'} ({', '.join(layers(args.root))})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
