#!/usr/bin/env python3
"""Finds import cycles between the library's modules.

Usage: module-cycles.py [SRC]   (default: the src/ beside .ci/)

Every file under SRC that lib.rs reaches is a module (src/delta/bundle.rs is
delta::bundle; tests.rs files and `#[cfg(test)] mod` blocks are left out: only
non-test code counts). Each path it names, in `use` items and in code
(`crate::a::b`, `super::x`, `self::y`), is resolved to the deepest module it
reaches, following a parent's `pub use child::Name` re-exports. A reference
between a module and its own ancestor is how a parent re-exports its children
and they use its error type, and is not an edge; any other reference is an
edge between the two siblings under the modules' nearest common ancestor
(delta::bundle -> delta::export, or app -> delta for app::build naming
crate::delta::inventory). A cycle among siblings is reported, with one path
per edge that makes it, and the exit status is 1. lib.rs's layer list is
stricter still; this check is the part a script can hold the code to.
"""

import os
import re
import sys
from collections import defaultdict


def strip_comments(text):
    """Removes comments and string literals' contents, keeping line breaks."""
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
                    if text[i] == "\n":
                        out.append("\n")
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not (i and (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r'r(#*)"', text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append('""' + "\n" * text.count("\n", i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'" and re.match(r"'(\\.|[^\\'])'|'\\u\{[0-9a-fA-F]+\}'|'\\x[0-9a-fA-F]{2}'", text[i:i + 12]):
            m = re.match(r"'(\\.|[^\\'])'|'\\u\{[0-9a-fA-F]+\}'|'\\x[0-9a-fA-F]{2}'", text[i:i + 12])
            out.append("' '")
            i += m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_test_modules(text):
    """Removes `#[cfg(test)] mod NAME { ... }` blocks."""
    while True:
        m = re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text)
        if not m:
            return text
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        text = text[:m.start()] + text[i:]


def expand_use_tree(tree):
    """`a::{b, c::{d, e as f}}` -> ["a::b", "a::c::d", "a::c::e"]."""
    tree = re.sub(r"\s*(::|\{|\}|,)\s*", r"\1", tree.strip())
    if "{" not in tree:
        return [tree]
    prefix, rest = tree.split("{", 1)
    body = rest[: rest.rfind("}")]
    parts, depth, start = [], 0, 0
    for i, c in enumerate(body):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    paths = []
    for part in parts:
        if part:
            paths.extend(expand_use_tree(prefix + part))
    return paths


class Crate:
    def __init__(self, src):
        self.src = src
        self.files = {}  # module tuple -> path
        self.reexports = defaultdict(dict)  # module -> {name: child module}
        self.find_modules(("lib.rs",), ())

    def find_modules(self, file_parts, module):
        path = os.path.join(self.src, *file_parts)
        self.files[module] = path
        text = strip_test_modules(strip_comments(open(path).read()))
        here = os.path.dirname(path) if file_parts[-1] in ("lib.rs", "mod.rs", "main.rs") \
            else os.path.join(os.path.dirname(path), file_parts[-1][:-3])
        for m in re.finditer(r"(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text):
            if "cfg(test)" in m.group(0):
                continue
            name = m.group(1)
            rel = os.path.relpath(here, self.src)
            rel_parts = () if rel == "." else tuple(rel.split(os.sep))
            if os.path.exists(os.path.join(here, name + ".rs")):
                self.find_modules(rel_parts + (name + ".rs",), module + (name,))
            elif os.path.exists(os.path.join(here, name, "mod.rs")):
                self.find_modules(rel_parts + (name, "mod.rs"), module + (name,))

    def text(self, module):
        return strip_test_modules(strip_comments(open(self.files[module]).read()))

    def absolute(self, module, path):
        """A path as named in `module`, from the crate root, or None."""
        parts = path.split("::")
        if parts[0] == "crate":
            return tuple(parts[1:])
        base = list(module)
        if parts[0] == "self":
            parts = parts[1:]
        elif parts[0] == "super":
            while parts and parts[0] == "super":
                base, parts = base[:-1], parts[1:]
        elif module + (parts[0],) in self.files:  # a child, 2018-style
            pass
        else:
            return None  # another crate, or a local name
        return tuple(base) + tuple(parts)

    def resolve(self, path):
        """The deepest module a crate-rooted path reaches."""
        module = ()
        for i, part in enumerate(path):
            if module + (part,) in self.files:
                module = module + (part,)
                continue
            child = self.reexports[module].get(part)
            if child is not None:
                return child
            break
        return module

    def references(self, module):
        text = self.text(module)
        found = []
        for m in re.finditer(r"\buse\s+([^;]+);", text):
            for path in expand_use_tree(m.group(1)):
                path = re.split(r"\s*\bas\b", path)[0].rstrip(":*")
                found.append(path)
        code = re.sub(r"\buse\s+[^;]+;", "", text)
        found += re.findall(r"\b(?:crate|self|super)(?:::\w+)+", code)
        return found

    def collect_reexports(self):
        for module in self.files:
            for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", self.text(module)):
                for path in expand_use_tree(m.group(1)):
                    name = re.split(r"\bas\b", path)[-1].split("::")[-1].strip()
                    target = self.absolute(module, re.split(r"\s*\bas\b", path)[0])
                    if target is None or name in ("*", "self"):
                        continue
                    target_module = self.resolve(target)
                    if target_module[: len(module)] == module and target_module != module:
                        self.reexports[module][name] = target_module


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    crate = Crate(src)
    crate.collect_reexports()
    # parent -> {child: {child: example}}
    edges = defaultdict(lambda: defaultdict(dict))
    for module in crate.files:
        for path in crate.references(module):
            target = crate.absolute(module, path)
            if target is None:
                continue
            target = crate.resolve(target)
            common = 0
            while common < min(len(module), len(target)) and module[common] == target[common]:
                common += 1
            if common == len(module) or common == len(target):
                continue  # an ancestor and its descendant
            parent = module[:common]
            a, b = module[common], target[common]
            edges[parent][a].setdefault(b, f"{'::'.join(module)} uses {path}")
    cycles = []
    for parent, graph in edges.items():
        for component in strongly_connected(graph):
            if len(component) > 1:
                cycles.append((parent, component, graph))
    for parent, component, graph in cycles:
        where = "::".join(parent) or "crate"
        print(f"module cycle under {where}: {', '.join(sorted(component))}")
        for a in sorted(component):
            for b in sorted(graph[a]):
                if b in component:
                    print(f"  {a} -> {b}: {graph[a][b]}")
    if cycles:
        return 1
    print(f"no module cycles among {len(crate.files)} modules")
    return 0


def strongly_connected(graph):
    """Tarjan's algorithm over the nodes and edges of `graph`."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    nodes = set(graph) | {b for a in graph for b in graph[a]}

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            result.append(component)

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return result


if __name__ == "__main__":
    sys.exit(main())
