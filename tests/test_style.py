"""Guard rails for wsproxy.py's shape (issue 12): every function stays
within a complexity budget a reader can hold, and fits on a screen."""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WSPROXY = os.path.join(ROOT, "wsproxy.py")
MAX_COMPLEXITY = 15
MAX_FUNCTION_LINES = 80


def _ruff():
    try:
        import ruff  # noqa: F401  (test-only; its binary sits beside the interpreter)
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("ruff is not installed (tests/requirements.txt)")
        pytest.skip("ruff is not installed (tests/requirements.txt)")
    return [sys.executable, "-m", "ruff"]


def test_no_function_is_more_complex_than_the_budget():
    result = subprocess.run(_ruff() + ["check", "--no-cache", "--select", "C901", "--config",
                                       "lint.mccabe.max-complexity=%d" % MAX_COMPLEXITY, WSPROXY],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_function_is_longer_than_a_screen():
    tree = ast.parse(open(WSPROXY, encoding="utf-8").read())
    long = ["%s (line %d): %d lines" % (node.name, node.lineno, node.end_lineno - node.lineno + 1)
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, long


def test_the_lint_finds_what_it_should():
    """The complexity check itself works: a function over budget is reported."""
    branches = "\n".join("    if x == %d:\n        return %d" % (n, n) for n in range(MAX_COMPLEXITY + 1))
    source = "def f(x):\n%s\n    return -1\n" % branches
    result = subprocess.run(_ruff() + ["check", "--no-cache", "--select", "C901", "--config",
                                       "lint.mccabe.max-complexity=%d" % MAX_COMPLEXITY, "--stdin-filename",
                                       "probe.py", "-"], input=source, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "C901" in result.stdout
