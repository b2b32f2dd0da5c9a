"""Runs the browser client's pure-module tests (tests/js/**/*.test.mjs) with Node's
built-in test runner, so the README's one test command covers web/ too, and lints
web/ and tests/js with ESLint (tests/js/eslint.config.mjs; .ci/run installs it)."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JS_TESTS = os.path.join(ROOT, "tests", "js")
ESLINT_CONFIG = os.path.join("tests", "js", "eslint.config.mjs")


def require_tool(name, why):
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is required in CI {why}")
        pytest.skip(f"{name} is not installed")
    return path


def js_test_files():
    """Every *.test.mjs under tests/js, subfolders included (tests/js/decoders/)."""
    found = []
    for folder, _dirs, files in os.walk(JS_TESTS):
        found.extend(os.path.join(folder, f) for f in files if f.endswith(".test.mjs"))
    return sorted(found)


def test_node_suite_passes():
    node = require_tool("node", "to test web/")
    files = js_test_files()
    assert files, "no JavaScript tests found"
    result = subprocess.run([node, "--test"] + files,
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    sys.stdout.write(result.stdout[-4000:])
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]


def test_js_lint_passes():
    """One indentation style, no unused variables, no undefined globals, and no
    DOM in web/core/ (the rules are in tests/js/eslint.config.mjs)."""
    eslint = require_tool("eslint", "to lint web/ (.ci/run installs it with npm)")
    result = subprocess.run([eslint, "--config", ESLINT_CONFIG, "--max-warnings", "0", "web", "tests/js"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
