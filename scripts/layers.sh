#!/usr/bin/env bash
# Checks that the files under src/ form layers: lists the dependencies
# between modules (a module is a .c file and its .h, e.g. src/sender.c and
# src/sender.h) and fails when they contain a cycle.
#
# A header named X_internal.h belongs to module X: it holds what X's own
# files share and nothing outside X may include it.
#
# Two kinds of edge are collected:
#   - include: a module's .c or .h has `#include "other.h"`;
#   - call:    a module's object file refers to a symbol that another
#              module's object file defines (a call, or a function or
#              variable taken by address, as in an option table).
# Calls are read with nm from the objects of an existing build, so build
# first. Usage: scripts/layers.sh [BUILD_DIR] [--list]
#   --list    also prints every edge, grouped by module
#   --levels  also prints each module's level: 0 for a module that uses no
#             other, else one more than the highest level it uses
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=build
LIST=0
LEVELS=0
for a in "$@"; do
	case $a in
	--list) LIST=1 ;;
	--levels) LEVELS=1 ;;
	-h | --help)
		sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*) BUILD=$a ;;
	esac
done
[ -d "$BUILD" ] || { echo "layers: no build directory '$BUILD' (build first)" >&2; exit 2; }

exec python3 - "$BUILD" "$LIST" "$LEVELS" <<'PY'
import os, re, subprocess, sys

build, want_list, want_levels = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
srcs = subprocess.run(["git", "ls-files", "src"], capture_output=True, text=True,
                      check=True).stdout.split()
srcs = [s for s in srcs if s.endswith((".c", ".h"))]

def module(path):
    stem = os.path.splitext(path)[0]
    if path.endswith("_internal.h"):
        stem = stem[: -len("_internal")]
    return stem

modules = sorted({module(s) for s in srcs})
by_header = {}
for s in srcs:
    if s.endswith(".h"):
        by_header.setdefault(os.path.basename(s), []).append(s)

edges = {}  # (from, to) -> set of reasons

def add(a, b, why):
    if a != b:
        edges.setdefault((a, b), set()).add(why)

inc_re = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
for s in srcs:
    d = os.path.dirname(s)
    with open(s, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = inc_re.match(line)
            if not m:
                continue
            name = m.group(1)
            # Resolved as the build does: next to the file, then from src/.
            for cand in (os.path.normpath(os.path.join(d, name)),
                         os.path.normpath(os.path.join("src", name))):
                if cand in srcs:
                    add(module(s), module(cand), "include " + name)
                    break

# Object files of the project's own targets (not the tests'), mapped back to
# their sources by meson's naming (src/a/b.c -> src_a_b.c.o).
mangled = {s.replace("/", "_") + ".o": s for s in srcs if s.endswith(".c")}
objs = {}
for root, dirs, files in os.walk(build):
    rel = os.path.relpath(root, build)
    if rel.startswith(("tests", "bench", "examples", "fuzz")):
        continue
    for fn in files:
        if fn in mangled:
            objs.setdefault(mangled[fn], os.path.join(root, fn))
missing = [s for s in srcs if s.endswith(".c") and s not in objs]
if missing:
    print("layers: not built in %s: %s" % (build, " ".join(missing)), file=sys.stderr)
    sys.exit(2)

defined, undefined = {}, {}
for src, obj in objs.items():
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.setdefault(src, set()).add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRCGSV":
            defined.setdefault(parts[2], src)
for src, syms in undefined.items():
    for sym in syms:
        if sym in defined:
            add(module(src), module(defined[sym]), "call " + sym)

graph = {m: set() for m in modules}
for (a, b) in edges:
    graph[a].add(b)

# Tarjan's strongly connected components; any component of two or more
# modules is a cycle.
index, low, stack, on, sccs = {}, {}, [], set(), []
def strong(v, counter=[0]):
    index[v] = low[v] = counter[0]; counter[0] += 1
    stack.append(v); on.add(v)
    for w in sorted(graph[v]):
        if w not in index:
            strong(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v:
                break
        sccs.append(sorted(comp))
sys.setrecursionlimit(10000)
for m in modules:
    if m not in index:
        strong(m)

if want_list:
    for m in modules:
        outs = sorted(b for (a, b) in edges if a == m)
        if outs:
            print(m)
            for b in outs:
                print("    -> %s (%s)" % (b, ", ".join(sorted(edges[(m, b)]))))

cycles = [c for c in sccs if len(c) > 1]
if want_levels and not cycles:
    level = {}
    def lev(m):
        if m not in level:
            level[m] = 1 + max((lev(b) for b in graph[m]), default=-1)
        return level[m]
    for m in modules:
        lev(m)
    for n in range(max(level.values()) + 1):
        print("level %d: %s" % (n, " ".join(sorted(m for m in modules if level[m] == n))))
for c in cycles:
    print("layers: cycle between %s" % ", ".join(c))
    for a in c:
        for b in c:
            if (a, b) in edges:
                print("    %s -> %s: %s" % (a, b, ", ".join(sorted(edges[(a, b)]))))
if cycles:
    sys.exit(1)
print("layers: %d modules, %d edges, no cycles" % (len(modules), len(edges)))
PY
