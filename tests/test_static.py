"""Section 8: static file resolution, MIME types and conditional GET.

A real web root is built under tmp_path, with symlinks pointing in and out.
"""

import email.utils
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsproxy
from wsproxy import HttpError, resolve_static_path

pytestmark = pytest.mark.pure


def build(base):
    """web/ plus an outside/ directory that must never be served."""
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (outside / "vnc.html").write_text("outside page")
    web = base / "web"
    (web / "core").mkdir(parents=True)
    (web / "sub").mkdir()
    (web / "emptydir").mkdir()
    (web / ".git").mkdir()
    (web / "vnc.html").write_text("<!doctype html>")
    (web / "index.html").write_text("index")
    (web / "app.js").write_text("export {}")
    (web / "core" / "rfb.js").write_text("export {}")
    (web / "sub" / "index.html").write_text("sub index")
    (web / ".secret").write_text("dot")
    (web / ".git" / "config").write_text("[core]")
    (web / "evil.example").mkdir()
    (web / "evil.example" / "page.html").write_text("a local directory named like a host")
    os.symlink("app.js", str(web / "alias.js"))                      # inside: fine
    os.symlink("core", str(web / "coredir"))                         # inside: fine
    os.symlink(str(outside / "secret.txt"), str(web / "leak.txt"))   # outside: refused
    os.symlink("../outside", str(web / "leakdir"))                   # outside: refused
    return os.path.realpath(str(web)), os.path.realpath(str(outside))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return build(tmp_path_factory.mktemp("static"))


@pytest.fixture
def root(tree):
    return tree[0]


def refused(root, url_path):
    with pytest.raises(HttpError) as info:
        resolve_static_path(root, url_path)
    return info.value.status


# -- what is served -------------------------------------------------------------------


@pytest.mark.parametrize("url_path, relative", [
    ("/vnc.html", "vnc.html"),
    ("/app.js", "app.js"),
    ("/core/rfb.js", "core/rfb.js"),
    ("/core//rfb.js", "core/rfb.js"),
    ("/%63ore/rfb.js", "core/rfb.js"),       # plain letters may be percent-encoded
    ("/", "vnc.html"),                       # the root's index is vnc.html, before index.html
    ("/sub", "sub/index.html"),              # no redirect to /sub/
    ("/sub/", "sub/index.html"),
    ("/evil.example/page.html", "evil.example/page.html"),
])
def test_files_inside_the_root(root, url_path, relative):
    assert resolve_static_path(root, url_path) == os.path.join(root, *relative.split("/"))


def test_symlink_inside_the_root_is_served(root):
    assert resolve_static_path(root, "/alias.js") == os.path.join(root, "app.js")
    assert resolve_static_path(root, "/coredir/rfb.js") == os.path.join(root, "core", "rfb.js")


# -- what is refused ------------------------------------------------------------------


@pytest.mark.parametrize("url_path", [
    "/../outside/secret.txt",
    "/core/../../outside/secret.txt",
    "/core/../app.js",                  # even when it would stay inside: rejected, not normalised
    "/./app.js",
    "/%2e%2e/outside/secret.txt",
    "/%2E%2e%2foutside%2fsecret.txt",
    "/..%2f..%2foutside/secret.txt",
    "/core%2f..%2f..%2foutside%2fsecret.txt",
    "/%2e/app.js",
])
def test_dot_segments_plain_or_encoded_are_404(root, url_path):
    assert refused(root, url_path) == 404


@pytest.mark.parametrize("url_path", [
    "/..\\outside\\secret.txt",
    "/%5c..%5coutside%5csecret.txt",
    "/core%5Crfb.js",
    "/app.js%00.html",
    "/app.js\x00",
    "/%ff%fe",                          # not UTF-8
    "app.js",                           # not absolute
])
def test_backslash_nul_bad_utf8_and_relative_paths_are_400(root, url_path):
    assert refused(root, url_path) == 400


@pytest.mark.parametrize("url_path", ["/.secret", "/.git/config", "/%2egit/config", "/.git/", "/core/.hidden"])
def test_dot_files_are_404(root, url_path):
    assert refused(root, url_path) == 404


@pytest.mark.parametrize("url_path", ["/leak.txt", "/leakdir/secret.txt", "/leakdir", "/leakdir/"])
def test_symlinks_out_of_the_root_are_404(root, url_path):
    assert refused(root, url_path) == 404


def test_symlinked_index_file_out_of_the_root_is_not_served(tmp_path):
    # A directory's index goes through the same containment check as any file.
    (tmp_path / "secret.txt").write_text("secret")
    web = tmp_path / "web"
    (web / "sub").mkdir(parents=True)
    os.symlink(str(tmp_path / "secret.txt"), str(web / "vnc.html"))
    os.symlink(str(tmp_path / "secret.txt"), str(web / "sub" / "index.html"))
    root = os.path.realpath(str(web))
    outside = os.path.realpath(str(tmp_path / "secret.txt"))
    for url_path in ["/", "/sub/", "/vnc.html", "/sub/index.html"]:
        try:
            path = resolve_static_path(root, url_path)
        except HttpError as exc:
            assert exc.status == 404
        else:
            assert os.path.realpath(path) != outside, url_path


@pytest.mark.parametrize("url_path", ["//evil.example", "//evil.example/", "///evil.example/x", "//other.host/"])
def test_double_slash_paths_never_leave_the_root(root, url_path):
    # CVE-2021-3654: websockify answered "//host/" with a redirect to it.
    # Here such a path is only ever a path inside the root (or nothing).
    try:
        path = resolve_static_path(root, url_path)
    except HttpError as exc:
        assert exc.status == 404
    else:
        assert path.startswith(root + os.sep)


def test_double_slash_is_just_a_path(root):
    assert resolve_static_path(root, "//app.js") == os.path.join(root, "app.js")
    assert refused(root, "//evil.example") == 404  # a directory without an index


def test_directory_without_an_index_has_no_listing(root):
    assert refused(root, "/emptydir/") == 404
    assert refused(root, "/core/") == 404


def test_missing_file_is_404(root):
    assert refused(root, "/nope.js") == 404
    assert refused(root, "/app.js/extra") == 404


# -- content types, headers, conditional GET ----------------------------------------------


@pytest.mark.parametrize("name, expected", [
    ("app.js", "text/javascript"),          # browsers refuse module scripts served otherwise
    ("core/rfb.mjs", "text/javascript"),
    ("APP.JS", "text/javascript"),
    ("vnc.html", "text/html"),
    ("style.css", "text/css"),
    ("logo.svg", "image/svg+xml"),
    ("icon.png", "image/png"),
    ("inflate.wasm", "application/wasm"),
    ("app.js.map", "application/json"),
    ("README", "application/octet-stream"),
    ("archive.tar.gz", "application/octet-stream"),
])
def test_content_type(name, expected):
    assert wsproxy.content_type(name).split(";")[0] == expected


def test_text_types_declare_utf8():
    for name in ["a.js", "a.html", "a.css"]:
        assert "charset=utf-8" in wsproxy.content_type(name)


def test_static_headers(root):
    path = os.path.join(root, "app.js")
    st_ = os.stat(path)
    headers = dict(wsproxy.static_headers(path, st_))
    assert headers["Content-Type"].startswith("text/javascript")
    assert headers["Content-Length"] == str(len("export {}"))
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert email.utils.parsedate_to_datetime(headers["Last-Modified"]).timestamp() == int(st_.st_mtime)


def test_not_modified():
    mtime = 1_700_000_000.75  # sub-second, as filesystems report
    last_modified = email.utils.formatdate(mtime, usegmt=True)
    # The browser sends back the Last-Modified it was given (whole seconds).
    assert wsproxy.not_modified(last_modified, mtime)
    assert wsproxy.not_modified(email.utils.formatdate(mtime + 3600, usegmt=True), mtime)
    assert not wsproxy.not_modified(email.utils.formatdate(mtime - 1, usegmt=True), mtime)
    assert not wsproxy.not_modified(None, mtime)
    assert not wsproxy.not_modified("", mtime)
    assert not wsproxy.not_modified("yesterday", mtime)
    assert not wsproxy.not_modified("Mon, 99 Foo 99999 99:99:99 GMT", mtime)


# -- property -------------------------------------------------------------------------------

_SEGMENTS = st.sampled_from(["", ".", "..", "%2e", "%2E", "%2e%2e", "%2f", "%2F", "%5c", "\\", "%00", "%",
                             "%ff", "%c3%a9", "leak.txt", "leakdir", "secret.txt", "outside", "core",
                             "coredir", "rfb.js", "vnc.html", "app.js", "alias.js", "sub", ".git", "x"])
_PATHS = st.one_of(
    st.text(max_size=60),
    st.lists(_SEGMENTS, max_size=8).map(lambda parts: "/" + "/".join(parts)),
    st.lists(st.one_of(_SEGMENTS, st.just("/")), max_size=12).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(_PATHS)
def test_arbitrary_paths_never_resolve_outside_the_root(tree, url_path):
    root, outside = tree
    try:
        path = resolve_static_path(root, url_path)
    except HttpError as exc:
        assert exc.status in (400, 404)
        return
    real = os.path.realpath(path)
    assert real.startswith(root + os.sep), (url_path, real)
    assert not real.startswith(outside + os.sep)
    assert os.path.isfile(real)


def test_http_date_matches_rfc_9110_and_round_trips():
    """Last-Modified uses IMF-fixdate; the RFC 9110 example and a round trip."""
    assert wsproxy.http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT"
    for stamp in (0, 951782400, 1709208000, 4102444799):  # epoch, leap days, 2099
        assert wsproxy.parse_http_date(wsproxy.http_date(stamp)) == stamp
    for bad in ("", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
                "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, xx Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT"):
        assert wsproxy.parse_http_date(bad) is None


def test_importing_wsproxy_does_not_load_ssl_or_email():
    """A proxy without TLS never pays for the ssl module (about 6 MB)."""
    import subprocess, sys
    code = "import sys, wsproxy; print('ssl' in sys.modules, 'email' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.abspath(wsproxy.__file__)), check=True)
    assert out.stdout.split() == ["False", "False"]


# -- If-Modified-Since from a peer: anything that is not a date is ignored -------------


@pytest.mark.parametrize("text", [
    "Sun, \xb2 Nov 1994 08:49:37 GMT",               # "\xb2" is a digit to str.isdigit(), not to int()
    "Sun, \xb2\xb3 Nov 1994 08:49:37 GMT",
    "Sun, 06 Nov 1994 08:49:\xb97 GMT",
    "Sun, 06 Nov \u0661\u0669\u0669\u0664 08:49:37 GMT",  # Arabic-Indic digits, which int() would take
    "Sun, 06 Nov " + "9" * 5000 + " 08:49:37 GMT",   # int() refuses over 4,300 digits (Python 3.11+)
    "Sun, 06 Nov 19940 08:49:37 GMT",
    "Sun, 6 Nov 1994 08:49:37 GMT",
    "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT", "Sun, 00 Nov 1994 08:49:37 GMT",
    "Sun,  06 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT ", "Sun, 06 nov 1994 08:49:37 GMT",
    "Foo, 06 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT\n",
])
def test_parse_http_date_refuses_what_is_not_an_imf_fixdate(text):
    assert wsproxy.parse_http_date(text) is None
    assert wsproxy.not_modified(text, 0) is False


def test_parse_http_date_takes_a_leap_second():
    assert wsproxy.parse_http_date("Sat, 31 Dec 2016 23:59:60 GMT") == 1483228800


def _digits(most):
    """Runs of digits, some of them digits only to str.isdigit() or to int()."""
    return st.text(alphabet="0123456789\xb2\xb3\xb9\u0661", min_size=1, max_size=most)


_NEAR_DATES = st.builds("{}, {} {} {} {}:{}:{} GMT".format, st.sampled_from(["Sun", "Mon", "x"]), _digits(3),
                        st.sampled_from(["Nov", "Feb", "Foo"]), _digits(6), _digits(3), _digits(3), _digits(3))


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=40), _NEAR_DATES))
def test_any_if_modified_since_gives_a_date_or_none(text):
    since = wsproxy.parse_http_date(text)
    assert since is None or isinstance(since, int)
    wsproxy.not_modified(text, 1_700_000_000)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 253402300799))  # up to the last second of 9999
def test_http_date_round_trips(stamp):
    assert wsproxy.parse_http_date(wsproxy.http_date(stamp)) == stamp
