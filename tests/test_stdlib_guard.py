"""wsproxy.py stays one standard-library-only file for Python 3.8+, safe to import."""

import ast
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.pure

WSPROXY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "wsproxy.py")

# Top-level standard-library modules of Python 3.8 (sys.stdlib_module_names
# arrived in 3.10).  Also the floor: a module new in 3.9+ (zoneinfo, graphlib)
# would import here on a newer Python but fail on 3.8.
STDLIB_38 = frozenset("""
    __future__ _sha1 _thread abc argparse array ast asyncio atexit base64 binascii bisect builtins bz2
    calendar cgi codecs collections colorsys concurrent configparser contextlib contextvars copy
    copyreg csv ctypes dataclasses datetime decimal difflib dis email encodings enum errno
    faulthandler fcntl filecmp fileinput fnmatch fractions functools gc getopt getpass gettext glob
    grp gzip hashlib heapq hmac html http imaplib importlib inspect io ipaddress itertools json
    keyword linecache locale logging lzma mailbox marshal math mimetypes mmap msvcrt multiprocessing
    netrc numbers operator optparse os pathlib pickle pkgutil platform plistlib poplib posix
    posixpath pprint pwd queue quopri random re reprlib resource sched secrets select selectors shlex
    shutil signal smtplib socket socketserver sqlite3 ssl stat statistics string stringprep struct
    subprocess sys syslog tarfile tempfile termios textwrap threading time timeit token tokenize traceback
    tracemalloc types typing unicodedata urllib uuid warnings weakref winreg wsgiref xml zipfile zlib
""".split())


@pytest.fixture(scope="module")
def tree():
    with open(WSPROXY, encoding="utf-8") as handle:
        source = handle.read()
    return ast.parse(source, filename=WSPROXY)


def imported_modules(tree):
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in a one-file program"
            names.add(node.module.split(".")[0])
    return names


def test_parses_as_python_3_8():
    with open(WSPROXY, encoding="utf-8") as handle:
        ast.parse(handle.read(), filename=WSPROXY, feature_version=(3, 8))


def test_imports_only_the_standard_library(tree):
    modules = imported_modules(tree)
    assert {"socket", "ssl", "hashlib"} <= modules  # the walk does find imports
    stdlib = getattr(sys, "stdlib_module_names", STDLIB_38)
    assert modules - set(stdlib) == set(), "not in the standard library"


def test_imports_exist_in_python_3_8(tree):
    assert imported_modules(tree) - STDLIB_38 == set(), "not in Python 3.8's standard library"


def test_no_dynamic_imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            assert name not in ("__import__", "import_module"), "line %d: dynamic import" % node.lineno


def _annotations(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            for arg in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
                if arg is not None and arg.annotation is not None:
                    yield arg.annotation
            if node.returns is not None:
                yield node.returns
        elif isinstance(node, ast.AnnAssign):
            yield node.annotation  # module and class level ones (dataclass fields) are evaluated


def test_annotations_evaluate_on_python_3_8(tree):
    # Without "from __future__ import annotations", list[int] and A | B in a
    # signature or dataclass field raise TypeError on 3.8 at import time.
    future = any(isinstance(n, ast.ImportFrom) and n.module == "__future__"
                 and any(a.name == "annotations" for a in n.names) for n in ast.walk(tree))
    if future:
        return
    builtin_generics = {"list", "dict", "tuple", "set", "frozenset", "type"}
    for annotation in _annotations(tree):
        for node in ast.walk(annotation):
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
                assert node.value.id not in builtin_generics, \
                    "line %d: %s[...] needs Python 3.9" % (node.lineno, node.value.id)
            assert not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)), \
                "line %d: X | Y in an annotation needs Python 3.10" % node.lineno


def test_no_string_methods_newer_than_3_8(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            assert node.attr not in ("removeprefix", "removesuffix"), "line %d: needs Python 3.9" % node.lineno


# Run in a fresh interpreter: this test process has imported wsproxy already.
_PROBE = r"""
import json, logging, os, signal, socket, sys, threading

repo, out = sys.argv[1], sys.argv[2]
made = []
_init = socket.socket.__init__
def _counting_init(self, *args, **kwargs):
    made.append("socket")
    _init(self, *args, **kwargs)
socket.socket.__init__ = _counting_init
_pair = socket.socketpair
def _counting_pair(*args, **kwargs):
    made.append("socketpair")
    return _pair(*args, **kwargs)
socket.socketpair = _counting_pair
_start = threading.Thread.start
def _counting_start(self):
    made.append("thread " + self.name)
    _start(self)
threading.Thread.start = _counting_start

fd_dir = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else None
before = {
    "threads": threading.active_count(),
    "root_handlers": len(logging.getLogger().handlers),
    "root_level": logging.getLogger().level,
    "signals": [str(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM)],
    "stack_size": threading.stack_size(),
    "cwd": os.getcwd(),
    "files_here": sorted(os.listdir(".")),
    "fds": len(os.listdir(fd_dir)) if fd_dir else None,
}
sys.path.insert(0, repo)
import wsproxy
after = {
    "threads": threading.active_count(),
    "root_handlers": len(logging.getLogger().handlers),
    "root_level": logging.getLogger().level,
    "signals": [str(signal.getsignal(s)) for s in (signal.SIGINT, signal.SIGTERM)],
    "stack_size": threading.stack_size(),
    "cwd": os.getcwd(),
    "files_here": sorted(os.listdir(".")),
    "fds": len(os.listdir(fd_dir)) if fd_dir else None,
}
logger = logging.getLogger("wsproxy")
with open(out, "w") as handle:
    json.dump({"before": before, "after": after, "made": made,
               "wsproxy_handlers": len(logger.handlers), "wsproxy_level": logger.level,
               "file": wsproxy.__file__}, handle)
"""


def test_import_has_no_side_effects(tmp_path):
    out = tmp_path / "probe.json"
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run([sys.executable, "-c", _PROBE, os.path.dirname(WSPROXY), str(out)],
                            cwd=str(workdir), env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == "", "importing printed something"
    probe = json.loads(out.read_text())
    assert os.path.samefile(probe["file"], WSPROXY)
    assert probe["made"] == [], "importing started threads or made sockets"
    assert probe["after"] == probe["before"]
    # A library-style logger: the program's main() adds handlers, import does not.
    assert probe["wsproxy_handlers"] == 0
    assert probe["wsproxy_level"] == 0
