"""Runs the browser client's pure-module tests (tests/js/*.test.mjs) with Node's
built-in test runner, so the README's one test command covers web/ too."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JS_TESTS = os.path.join(ROOT, "tests", "js")


def test_node_suite_passes():
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI") == "true":
            pytest.fail("node is required in CI to test web/")
        pytest.skip("node is not installed")
    files = sorted(f for f in os.listdir(JS_TESTS) if f.endswith(".test.mjs"))
    assert files, "no JavaScript tests found"
    result = subprocess.run([node, "--test"] + [os.path.join(JS_TESTS, f) for f in files],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    sys.stdout.write(result.stdout[-4000:])
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
