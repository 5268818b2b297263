#!/usr/bin/python3
"""include_cycles.py TOP - no two modules of lib/, daemon/ and ctl/ include
each other, directly or around a circle. A module is a .c file with its .h;
an edge is a quoted #include resolved the way the build's -iquote dirs do.
Prints every cycle (a strongly connected component of more than one module)
and exits 1 if there is one."""
import os
import re
import sys

top = sys.argv[1] if len(sys.argv) > 1 else '.'
dirs = ['lib', 'daemon', 'ctl']
files = []
for d in dirs:
    for root, _, names in os.walk(os.path.join(top, d)):
        files += [os.path.join(root, n) for n in names if n.endswith(('.c', '.h'))]
by_rel = {os.path.relpath(f, top): f for f in files}


def module(rel):
    return os.path.splitext(rel)[0]


def resolve(inc, src):
    # "x.h" next to the including file, then each -iquote dir (lib, daemon, ctl)
    for base in [os.path.dirname(src)] + dirs:
        rel = os.path.normpath(os.path.join(base, inc))
        if rel in by_rel:
            return rel
    return None


edges = {}
for rel in by_rel:
    m = module(rel)
    edges.setdefault(m, set())
    for line in open(by_rel[rel], encoding='utf-8'):
        g = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
        if g:
            tgt = resolve(g.group(1), rel)
            if tgt and module(tgt) != m:
                edges[m].add(module(tgt))

# Tarjan's strongly connected components
index, low, stack, on, sccs = {}, {}, [], set(), []
sys.setrecursionlimit(10000)


def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on.add(v)
    for w in edges.get(v, ()):
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
        if len(comp) > 1:
            sccs.append(sorted(comp))


for v in sorted(edges):
    if v not in index:
        visit(v)
for c in sccs:
    print('include cycle: ' + ' <-> '.join(c))
print('%d modules, %d include cycles' % (len(edges), len(sccs)))
sys.exit(1 if sccs else 0)
