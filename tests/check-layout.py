#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks the folder map and the dependency rule of docs/ARCHITECTURE.md.

From the #include lines of src/ and include/metald/:
  * every folder of src/ is a known room, and a file includes headers of its
    own room and of the rooms its room may use, nothing else;
  * a header beside its sources (src/ROOM/x.h) is included from its room only,
    and a header in include/metald/ is included from outside its room (that
    is what it is there for);
  * no files include each other in a loop (a header and the .c of the same
    name count as one module).
With --objects BUILD_DIR, the same from the symbols each object file defines
and uses (nm): a call into a higher room or a loop between files fails even
when it hides behind a header of a lower room.

Exit status 0 when the tree keeps the rule, 1 with one line per violation.
"""
import argparse
import collections
import os
import re
import subprocess
import sys

# Which rooms each room may use. A room may always use itself.
SERVICES = ["machine", "image", "enroll", "power", "k8s", "config", "store", "core"]
ALLOWED = {
    "core": [],
    "store": ["core"],
    "config": ["core"],
    "image": ["store", "core"],
    "power": ["core"],
    "k8s": ["core"],
    "machine": ["image", "power", "k8s", "config", "store", "core"],
    "enroll": ["image", "config", "core"],
    "dhcp": SERVICES,
    "tftp": SERVICES,
    "http": SERVICES,
    "daemon": ["dhcp", "tftp", "http"] + SERVICES,
    "cli": ["daemon", "dhcp", "tftp", "http"] + SERVICES,
    "agent": ["core"],
    "cmd": ["cli", "daemon", "agent", "dhcp", "tftp", "http"] + SERVICES,
}

# Headers in include/metald/ with no source file of the same name: their room.
HEADER_ROOMS = {
    "limits.h": "core",
    "cursor.h": "core",
    "version.h": "core",
    "runtime.h": "machine",
    "registry.h": "machine",
    "machine.h": "machine",
    "api.h": "machine",
    "syntax.h": "config",
    "http.h": "http",
    "http_service.h": "http",
    "dhcp.h": "dhcp",
    "dhcp_server.h": "dhcp",
    "tftp.h": "tftp",
    "agent.h": "agent",
    "cli.h": "cli",
    "initramfs.h": "enroll",
    "image.h": "image",
}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def walk(top, exts):
    for d, _, files in os.walk(top):
        for f in sorted(files):
            if f.endswith(exts):
                yield os.path.join(d, f)


class Tree:
    def __init__(self, root):
        self.root = root
        self.errors = []
        self.sources = sorted(os.path.relpath(p, root) for p in walk(os.path.join(root, "src"), (".c", ".h")))
        self.public = sorted(os.path.relpath(p, root) for p in walk(os.path.join(root, "include/metald"), (".h",)))
        self.c_room = {}                # basename of a .c -> its room
        for s in self.sources:
            if s.endswith(".c"):
                self.c_room.setdefault(os.path.basename(s)[:-2], self.room_of_source(s))

    def room_of_source(self, path):
        parts = path.split("/")
        if len(parts) != 3:
            self.errors.append(f"{path}: sources live one folder deep, in src/ROOM/")
            return "?"
        if parts[1] not in ALLOWED:
            self.errors.append(f"{path}: src/{parts[1]}/ is not a room of the dependency rule "
                               "(add it to tests/check-layout.py and docs/ARCHITECTURE.md)")
        return parts[1]

    def room_of(self, path):
        if path.startswith("src/"):
            return self.room_of_source(path)
        name = os.path.basename(path)
        if name[:-2] in self.c_room:
            return self.c_room[name[:-2]]
        if name in HEADER_ROOMS:
            return HEADER_ROOMS[name]
        self.errors.append(f"{path}: no src/ROOM/{name[:-2]}.c owns this header; name its room in "
                           "HEADER_ROOMS of tests/check-layout.py")
        return "?"

    def resolve(self, includer, name):
        """The tree path an #include "name" of includer refers to, or None (a system header)."""
        local = os.path.normpath(os.path.join(os.path.dirname(includer), name))
        if os.path.exists(os.path.join(self.root, local)):
            return local
        pub = os.path.normpath(os.path.join("include", name))
        if os.path.exists(os.path.join(self.root, pub)):
            return pub
        return None

    def includes(self, path):
        with open(os.path.join(self.root, path), encoding="utf-8", errors="replace") as f:
            text = f.read()
        for name in INCLUDE_RE.findall(text):
            target = self.resolve(path, name)
            if target is None:
                self.errors.append(f"{path}: #include \"{name}\" is neither beside it nor in include/")
            else:
                yield target


def module(path):
    """A header and the source of the same name are one module."""
    return os.path.splitext(path)[0] if path.startswith("src/") else "include/" + os.path.basename(path)[:-2]


def cycles(graph):
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def check_room_edge(tree, what, src_room, dst_room):
    if "?" in (src_room, dst_room) or src_room == dst_room:
        return
    if dst_room not in ALLOWED.get(src_room, []):
        tree.errors.append(f"{what}: {src_room}/ may not use {dst_room}/ "
                           f"({src_room}/ may use: {', '.join(ALLOWED.get(src_room, [])) or 'nothing of metald'})")


def check_includes(tree, test_files):
    graph = collections.defaultdict(set)
    outside_users = collections.defaultdict(set)
    for path in tree.sources + tree.public:
        room = tree.room_of(path)
        for target in tree.includes(path):
            troom = tree.room_of(target)
            check_room_edge(tree, f"{path} includes {target}", room, troom)
            if target.startswith("src/") and troom != room:
                tree.errors.append(f"{path} includes {target}: a header beside its sources is private to "
                                   f"{troom}/; move what crosses the boundary to include/metald/")
            if target.startswith("include/") and troom != room:
                outside_users[target].add(path)
            if module(path) != module(target):
                graph[module(path)].add(module(target))
    for path in test_files:
        for target in tree.includes(path):
            if target.startswith("include/"):
                outside_users[target].add(path)
    for pub in tree.public:
        if not outside_users[pub]:
            tree.errors.append(f"{pub}: only its own room ({tree.room_of(pub)}/) includes it; "
                               "a private header sits beside its sources")
    for comp in cycles(graph):
        tree.errors.append("files include each other in a loop: " + " -> ".join(comp))


def nm_symbols(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "TDBRCGS":
            defined.add(parts[2])
        elif len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
    return defined, used


def check_objects(tree, build):
    owner, uses = {}, {}
    for src in tree.sources:
        if not src.endswith(".c"):
            continue
        obj = os.path.join(build, src[:-2] + ".o")
        if not os.path.exists(obj):
            tree.errors.append(f"{obj}: missing; build first (make all)")
            continue
        defined, used = nm_symbols(obj)
        for sym in defined:
            owner[sym] = src
        uses[src] = used
    graph = collections.defaultdict(set)
    for src, used in uses.items():
        for sym in sorted(used):
            dst = owner.get(sym)
            if dst and dst != src:
                check_room_edge(tree, f"{src} calls {sym}() of {dst}", tree.room_of(src), tree.room_of(dst))
                graph[src].add(dst)
    for comp in cycles(graph):
        tree.errors.append("files call each other in a loop: " + " -> ".join(comp))
    return sum(len(v) for v in graph.values())


DOC_PATH_RE = re.compile(r"`([A-Za-z0-9_./-]+)`")


def check_docs(tree, docs):
    """Every file a document names in backticks exists: src/..., metald/x.h, or a bare x.c / x.h."""
    names = collections.defaultdict(list)
    for d, _, files in os.walk(tree.root):
        if "/build" in d or "/.git" in d:
            continue
        for f in files:
            names[f].append(os.path.relpath(os.path.join(d, f), tree.root))
    for doc in docs:
        with open(os.path.join(tree.root, doc), encoding="utf-8") as f:
            text = f.read()
        for token in sorted(set(DOC_PATH_RE.findall(text))):
            if token.startswith(("src/", "include/", "tests/", "docs/", "images/")):
                if not os.path.exists(os.path.join(tree.root, token.rstrip("/"))):
                    tree.errors.append(f"{doc} names {token}, which does not exist")
            elif token.startswith("metald/") and token.endswith(".h"):
                if not os.path.exists(os.path.join(tree.root, "include", token)):
                    tree.errors.append(f"{doc} names {token}, which is not in include/")
            elif re.fullmatch(r"[A-Za-z0-9_-]+\.[ch]", token) and token not in names:
                tree.errors.append(f"{doc} names {token}, which no folder holds")


def self_test():
    """The checker must fail on each kind of violation: a small tree per case."""
    import tempfile
    base = {
        "src/core/util.c": '#include "metald/util.h"\n',
        "include/metald/util.h": "",
        "src/machine/fsm.c": '#include "metald/fsm.h"\n#include "metald/util.h"\n',
        "include/metald/fsm.h": "",
        "src/dhcp/wire.c": '#include "metald/fsm.h"\n#include "wire.h"\n',
        "src/dhcp/wire.h": "",
        "src/dhcp/io.c": '#include "wire.h"\n',
        "tests/t.c": '#include "metald/util.h"\n#include "metald/fsm.h"\n',
    }
    cases = {
        "clean": {},
        "upward include": {"src/core/util.c": '#include "metald/fsm.h"\n'},
        "unknown room": {"src/nowhere/x.c": ""},
        "private header used elsewhere": {"src/machine/fsm.c": '#include "../dhcp/wire.h"\n'},
        "loop": {"src/dhcp/wire.c": '#include "io.h"\n', "src/dhcp/io.h": "", "src/dhcp/io.c": '#include "wire.h"\n'},
        "public header nobody else needs": {"include/metald/lonely.h": "", "src/core/lonely.c": '#include "metald/lonely.h"\n'},
    }
    failed = 0
    for name, change in cases.items():
        with tempfile.TemporaryDirectory() as d:
            for rel, text in {**base, **change}.items():
                os.makedirs(os.path.join(d, os.path.dirname(rel)), exist_ok=True)
                with open(os.path.join(d, rel), "w") as f:
                    f.write(text)
            tree = Tree(d)
            check_includes(tree, ["tests/t.c"])
            ok = not tree.errors
            if ok != (name == "clean"):
                print(f"layout self-test: case '{name}': expected {'no' if name == 'clean' else 'a'} violation, "
                      f"got {tree.errors}")
                failed += 1
    print(f"layout self-test: {len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", nargs="*", default=[], metavar="FILE", help="documents whose file names must exist")
    ap.add_argument("--self-test", action="store_true", help="check the checker on small trees and exit")
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--objects", metavar="BUILD_DIR", help="also check the symbols of BUILD_DIR/src/**/*.o")
    args = ap.parse_args()
    if args.self_test:
        return self_test()

    tree = Tree(os.path.abspath(args.root))
    tests = [os.path.relpath(p, tree.root) for p in walk(os.path.join(tree.root, "tests"), (".c", ".h"))]
    check_includes(tree, tests)
    check_docs(tree, args.docs)
    edges = check_objects(tree, args.objects) if args.objects else None
    errors = sorted(set(tree.errors))
    for e in errors:
        print("layout: " + e)
    rooms = sorted({tree.room_of(s) for s in tree.sources})
    if errors:
        print(f"layout: {len(errors)} violations of the dependency rule (docs/ARCHITECTURE.md)")
        return 1
    print(f"layout: {len(tree.sources)} sources in {len(rooms)} rooms, {len(tree.public)} public headers"
          + (f", {edges} calls between files" if edges is not None else "") + ": the dependency rule holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
