#!/usr/bin/env python3
"""A small mutation tester for wsproxy.py (standard library only).

A development tool, not part of the test suite: pytest collects only
``test_*.py``, so it never runs this file.  Each mutant makes one small change
to wsproxy.py -- ``and``/``or`` swapped, ``==``/``!=``, ``<``/``<=``,
``>``/``>=``, ``is``/``is not``, ``in``/``not in``, an integer constant plus
or minus one, ``True``/``False``, a ``not`` removed -- and the given pytest
selection runs against a temporary copy of the repository holding the
mutated file.  A mutant the tests fail on is *killed*; one they pass
*survived*: a change to the code that no test notices.

Run from the repository root::

    python3 tests/tools/mutate.py --section 7 tests/test_tokens.py
    python3 tests/tools/mutate.py --name Target.__eq__ --name CloseCode tests/test_frames.py
    python3 tests/tools/mutate.py --lines 891-1090 --sample 40 --seed 1 -- tests/test_tokens.py -k parse
    python3 tests/tools/mutate.py --section 7 --list          # the mutants, nothing run

Without --section, --lines or --name it mutates the pure sections 3-8.
Each mutant costs one pytest run (pytest -x stops at the first failure, so a
killed mutant is quick); --sample N runs N of them, chosen with --seed.
Use the same Python the tests need (the one with pytest and hypothesis).
Exit status: 0 when every mutant run was killed, 1 when some survived, 2 on
a usage error or when the tests fail before any mutation.
"""

import argparse
import ast
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_SECTIONS = (3, 4, 5, 6, 7, 8)   # the pure sections (wsproxy.py's design rules)
_BANNER_RE = re.compile(rb"^# (\d+)\. ", re.M)

# Compare operators: the mutant's text and a pattern that finds the original
# in the gap between two operands (comments blanked out first).
_COMPARE = {
    ast.Eq: ("!=", rb"=="), ast.NotEq: ("==", rb"!="),
    ast.Lt: ("<=", rb"<(?!=)"), ast.LtE: ("<", rb"<="),
    ast.Gt: (">=", rb">(?!=)"), ast.GtE: (">", rb">="),
    ast.Is: ("is not", rb"\bis\b(?!\s+not\b)"), ast.IsNot: ("is", rb"\bis\s+not\b"),
    ast.In: ("not in", rb"(?<!not )\bin\b"), ast.NotIn: ("in", rb"\bnot\s+in\b"),
}


class Mutant:
    """One change: byte-span edits of the source, where it is and what it does."""

    def __init__(self, line, what, edits, where):
        self.line, self.what, self.edits, self.where = line, what, edits, where

    def apply(self, source: bytes) -> bytes:
        for start, end, text in sorted(self.edits, reverse=True):
            source = source[:start] + text + source[end:]
        return source

    def __str__(self):
        return "wsproxy.py:%d  %-16s %s" % (self.line, self.what, self.where)


class _Finder(ast.NodeVisitor):
    """Walks the tree and lists every mutation site with the enclosing name."""

    def __init__(self, source: bytes):
        self.source = source
        self.starts = [0]
        for line in source.split(b"\n"):
            self.starts.append(self.starts[-1] + len(line) + 1)
        self.scope = []
        self.mutants = []

    # -- positions (ast columns are UTF-8 byte offsets, so all work is in bytes)

    def start(self, node) -> int:
        return self.starts[node.lineno - 1] + node.col_offset

    def end(self, node) -> int:
        return self.starts[node.end_lineno - 1] + node.end_col_offset

    def text(self, node) -> bytes:
        return self.source[self.start(node):self.end(node)]

    def find_in_gap(self, left, right, pattern):
        """The span of ``pattern`` between two operand nodes, or None."""
        start, end = self.end(left), self.start(right)
        gap = re.sub(rb"#[^\n]*", lambda m: b" " * len(m.group()), self.source[start:end])
        found = re.search(pattern, gap)
        return (start + found.start(), start + found.end()) if found else None

    def add(self, node, what, edits):
        self.mutants.append(Mutant(node.lineno, what, edits, ".".join(self.scope) or "<module>"))

    # -- scopes, so that --name can pick a function, class or module constant

    def _scoped(self, node, name):
        self.scope.append(name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node):
        self._scoped(node, node.name)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Assign(self, node):
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        names += [e.id for t in node.targets if isinstance(t, ast.Tuple) for e in t.elts
                  if isinstance(e, ast.Name)]
        if self.scope or not names:
            self.generic_visit(node)
        else:
            self._scoped(node, ",".join(names))

    # -- the mutations

    def visit_Expr(self, node):
        if not (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            self.generic_visit(node)   # a docstring has nothing to mutate

    def visit_BoolOp(self, node):
        word, other = (b"and", b"or") if isinstance(node.op, ast.And) else (b"or", b"and")
        edits = []
        for left, right in zip(node.values, node.values[1:]):
            span = self.find_in_gap(left, right, rb"\b" + word + rb"\b")
            if span is None:
                break
            edits.append(span + (other,))
        else:
            self.add(node, "%s -> %s" % (word.decode(), other.decode()), edits)
        self.generic_visit(node)

    def visit_Compare(self, node):
        operands = [node.left] + node.comparators
        for op, left, right in zip(node.ops, operands, operands[1:]):
            new, pattern = _COMPARE[type(op)]
            span = self.find_in_gap(left, right, pattern)
            if span is not None:
                old = self.source[span[0]:span[1]].decode()
                self.add(right, "%s -> %s" % (" ".join(old.split()), new), [span + (new.encode(),)])
        self.generic_visit(node)

    def visit_UnaryOp(self, node):
        if isinstance(node.op, ast.Not):
            self.add(node, "not removed", [(self.start(node), self.end(node),
                                            b"(" + self.text(node.operand) + b")")])
        self.generic_visit(node)

    def visit_Constant(self, node):
        value = node.value
        if isinstance(value, bool):
            self.add(node, "%s -> %s" % (value, not value),
                     [(self.start(node), self.end(node), str(not value).encode())])
        elif isinstance(value, int) and _literal(self.text(node)) == value:
            for delta in (1, -1):
                new = value + delta
                text = str(new) if new >= 0 else "(%d)" % new
                self.add(node, "%s -> %d" % (self.text(node).decode(), new),
                         [(self.start(node), self.end(node), text.encode())])


def _literal(text: bytes):
    try:
        return ast.literal_eval(text.decode())
    except (ValueError, SyntaxError):
        return None   # the span is not the plain literal (an f-string's insides): skip it


def find_mutants(source: bytes):
    finder = _Finder(source)
    finder.visit(ast.parse(source))
    return finder.mutants


def section_lines(source: bytes, number: int):
    banners = [(int(m.group(1)), source.count(b"\n", 0, m.start()) + 1) for m in _BANNER_RE.finditer(source)]
    for index, (found, line) in enumerate(banners):
        if found == number:
            end = banners[index + 1][1] - 1 if index + 1 < len(banners) else source.count(b"\n") + 1
            return line, end
    raise SystemExit("mutate: wsproxy.py has no section %d banner" % number)


def name_lines(source: bytes, name: str):
    """Line ranges of every function, class or module constant called ``name`` (or ending in .name)."""
    spans = []

    def walk(node, scope):
        for child in ast.iter_child_nodes(node):
            names = []
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [child.name]
            elif isinstance(child, ast.Assign) and not scope:
                names = [getattr(e, "id", "") for t in child.targets
                         for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
            for own in names:
                qual = ".".join(scope + [own])
                if qual == name or qual.endswith("." + name):
                    spans.append((child.lineno, child.end_lineno))
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                walk(child, scope + [child.name])

    walk(ast.parse(source), [])
    if not spans:
        raise SystemExit("mutate: nothing named %r in wsproxy.py" % name)
    return spans


def parse_lines(text: str):
    first, _, last = text.partition("-")
    try:
        return int(first), int(last or first)
    except ValueError:
        raise SystemExit("mutate: --lines wants FIRST-LAST, got %r" % text)


def selected_ranges(args, source: bytes):
    ranges = [parse_lines(text) for text in args.lines]
    ranges += [section_lines(source, n) for n in args.section]
    for name in args.name:
        ranges += name_lines(source, name)
    return ranges or [section_lines(source, n) for n in DEFAULT_SECTIONS]


def make_copy(root: str) -> str:
    """A temporary repository: tests/ copied, wsproxy.py written per mutant, the rest linked."""
    work = tempfile.mkdtemp(prefix="wsproxy-mutate-")
    for entry in os.listdir(root):
        if entry in (".git", "wsproxy.py", "__pycache__", ".hypothesis", ".pytest_cache"):
            continue
        path = os.path.join(root, entry)
        if entry == "tests":
            shutil.copytree(path, os.path.join(work, entry),
                            ignore=shutil.ignore_patterns("__pycache__", ".hypothesis", ".pytest_cache"))
        else:
            os.symlink(path, os.path.join(work, entry))
    return work


def run_tests(python, work, pytest_args, timeout):
    """'killed', 'survived' or 'timeout' (counted as killed: the tests noticed), and the seconds."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    command = [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--no-header"] + pytest_args
    began = time.monotonic()
    proc = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)   # the group we started: pytest and anything it spawned
        proc.wait()
        return "timeout", time.monotonic() - began
    if code in (3, 4, 5):   # pytest's internal error, usage error, nothing collected
        return "error %d" % code, time.monotonic() - began
    # 1 (a test failed) or 2 (a collection error or an interruption: an
    # import that breaks, say) both mean the tests noticed the mutant.
    return ("survived" if code == 0 else "killed"), time.monotonic() - began


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Mutation-test wsproxy.py against a pytest selection (see the module docstring).")
    parser.add_argument("pytest_args", nargs="*", metavar="PYTEST_ARG",
                        help="what pytest runs per mutant, e.g. tests/test_tokens.py (put -k and such after --)")
    parser.add_argument("--section", type=int, action="append", default=[],
                        help="mutate this numbered section of wsproxy.py (repeatable)")
    parser.add_argument("--lines", action="append", default=[], metavar="FIRST-LAST",
                        help="mutate these lines (repeatable)")
    parser.add_argument("--name", "--function", action="append", default=[], metavar="NAME",
                        help="mutate this function, class or module constant, e.g. TokenFile._refresh (repeatable)")
    parser.add_argument("--sample", type=int, default=0, metavar="N", help="run only N mutants, chosen at random")
    parser.add_argument("--seed", type=int, default=0, help="random seed for --sample (default 0)")
    parser.add_argument("--timeout", type=float, default=0,
                        help="seconds per mutant (default: 5x the unmutated run, at least 30)")
    parser.add_argument("--root", default=ROOT, help="repository to test (default: this one)")
    parser.add_argument("--python", default=sys.executable, help="interpreter with pytest (default: this one)")
    parser.add_argument("--list", action="store_true", help="list the selected mutants and exit")
    args = parser.parse_args(argv)
    if not args.pytest_args and not args.list:
        parser.error("name the tests to run, e.g. tests/test_tokens.py")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    with open(os.path.join(args.root, "wsproxy.py"), "rb") as handle:
        source = handle.read()
    ranges = selected_ranges(args, source)
    mutants = [m for m in find_mutants(source) if any(a <= m.line <= b for a, b in ranges)]
    total_sites = len(mutants)
    if args.sample and args.sample < len(mutants):
        mutants = sorted(random.Random(args.seed).sample(mutants, args.sample), key=lambda m: m.line)
    print("mutate: %d mutants in lines %s%s" % (
        total_sites, ", ".join("%d-%d" % r for r in ranges),
        "; running a sample of %d (seed %d)" % (len(mutants), args.seed) if len(mutants) < total_sites else ""))
    if args.list:
        for mutant in mutants:
            print("  " + str(mutant))
        return 0
    work = make_copy(args.root)
    try:
        return _run_all(args, source, mutants, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run_all(args, source, mutants, work) -> int:
    target = os.path.join(work, "wsproxy.py")
    with open(target, "wb") as handle:
        handle.write(source)
    outcome, seconds = run_tests(args.python, work, args.pytest_args, timeout=max(args.timeout, 600))
    if outcome != "survived":
        print("mutate: the tests do not pass on the unmutated wsproxy.py (%s); nothing to measure" % outcome)
        return 2
    timeout = args.timeout or max(30.0, 5 * seconds)
    print("mutate: unmutated run passes in %.1f s; timeout per mutant %.0f s" % (seconds, timeout))
    results = {}
    for mutant in mutants:
        mutated = mutant.apply(source)
        try:
            compile(mutated, "wsproxy.py", "exec")
        except SyntaxError:
            outcome = "skipped (not Python)"
        else:
            with open(target, "wb") as handle:
                handle.write(mutated)
            outcome, _ = run_tests(args.python, work, args.pytest_args, timeout)
        results.setdefault(outcome.split(" ")[0], []).append(mutant)
        print("%-9s %s" % (outcome.upper() if outcome == "survived" else outcome, mutant), flush=True)
    return _report(results, source)


def _report(results, source) -> int:
    killed = len(results.get("killed", [])) + len(results.get("timeout", []))
    survived = results.get("survived", [])
    scored = killed + len(survived)
    print()
    print("mutate: %d killed (%d by timeout), %d survived, %d errors, %d skipped" % (
        killed, len(results.get("timeout", [])), len(survived), len(results.get("error", [])),
        len(results.get("skipped", []))))
    if scored:
        print("mutate: score %d/%d = %.0f%%" % (killed, scored, 100.0 * killed / scored))
    lines = source.decode("utf-8").split("\n")
    for mutant in survived:
        print("  survived: %s\n      %s" % (mutant, lines[mutant.line - 1].strip()))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
