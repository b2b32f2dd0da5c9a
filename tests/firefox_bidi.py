"""Headless Firefox (Debian's firefox-esr) driven over its built-in WebDriver BiDi endpoint.

Debian ships no geckodriver and the tests never download browsers or drivers, so
this speaks the W3C WebDriver BiDi protocol itself (https://w3c.github.io/webdriver-bidi/)
over the `websockets` library: Firefox started with `--remote-debugging-port 0`
prints "WebDriver BiDi listening on ws://127.0.0.1:PORT"; a client connects to
`/session` and sends `session.new`.  Only the handful of commands the tests need:
browsingContext.getTree / setViewport / navigate / captureScreenshot,
script.callFunction, input.performActions, and log.entryAdded events (console
messages and page errors, for failure reports).

The profile is a fresh temporary directory whose user.js keeps Firefox off the
network (no updates, telemetry, captive-portal or connectivity checks, Normandy,
Nimbus, Safe Browsing or Remote Settings): it talks to loopback only.  Firefox
is stopped by `browser.close`, then by its PID if it is still running.
"""

import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import websockets.exceptions
from websockets.sync.client import connect

import realpeers

LISTENING_RE = re.compile(r"WebDriver BiDi listening on (ws://\S+)")
START_TIMEOUT = 30.0
COMMAND_TIMEOUT = 30.0

# Every service Firefox would reach on its own, pointed nowhere or switched off.
# (The remote agent also applies its own "recommended preferences"; these make the
# intent explicit and cover what those leave on.)
NO_NETWORK_PREFS = {
    "app.update.auto": False,
    "app.update.checkInstallTime": False,
    "app.update.disabledForTesting": True,
    "app.normandy.enabled": False,
    "app.normandy.api_url": "",
    "app.shield.optoutstudies.enabled": False,
    "messaging-system.rsexperimentloader.enabled": False,
    "nimbus.rollouts.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.page": 0,
    "browser.startup.homepage": "about:blank",
    "browser.startup.homepage_override.mstone": "ignore",
    "startup.homepage_welcome_url": "about:blank",
    "browser.newtabpage.enabled": False,
    "browser.newtabpage.activity-stream.feeds.system.topstories": False,
    "browser.newtabpage.activity-stream.feeds.section.topstories": False,
    "browser.newtabpage.activity-stream.showSponsoredTopSites": False,
    "browser.topsites.contile.enabled": False,
    "browser.ping-centre.telemetry": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.downloads.remote.enabled": False,
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.provider.google.updateURL": "",
    "browser.safebrowsing.provider.google4.updateURL": "",
    "browser.safebrowsing.provider.mozilla.updateURL": "",
    "browser.search.update": False,
    "browser.search.geoip.url": "",
    "browser.region.network.url": "",
    "browser.region.update.enabled": False,
    "geo.provider.network.url": "",
    "datareporting.healthreport.uploadEnabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "toolkit.telemetry.unified": False,
    "toolkit.telemetry.archive.enabled": False,
    "toolkit.telemetry.server": "",
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
    "network.http.speculative-parallel-limit": 0,
    "network.trr.mode": 5,
    "network.proxy.type": 0,
    "services.settings.server": "data:,#remote-settings-disabled",
    "extensions.update.enabled": False,
    "extensions.getAddons.cache.enabled": False,
    "extensions.blocklist.enabled": False,
    "media.gmp-manager.url": "",
    "media.gmp-gmpopenh264.enabled": False,
    "security.OCSP.enabled": 0,
    "identity.fxaccounts.enabled": False,
    "remote.active-protocols": 1,   # WebDriver BiDi only
}


class BiDiError(RuntimeError):
    """A command answered with an error, or a script threw."""


class Firefox:
    """One BiDi session with one top-level browsing context (the first tab)."""

    def __init__(self, ws, proc, version):
        self.ws, self.proc, self.version = ws, proc, version
        self._next_id = 0
        self.context = None
        self.log_entries = []   # log.entryAdded events: console messages and page errors

    def command(self, method, params=None, timeout=COMMAND_TIMEOUT):
        self._next_id += 1
        wanted = self._next_id
        self.ws.send(json.dumps({"id": wanted, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BiDiError("%s: no answer within %gs" % (method, timeout))
            message = json.loads(self.ws.recv(timeout=remaining))
            if message.get("type") == "event":
                if message.get("method") == "log.entryAdded":
                    self.log_entries.append(message["params"])
                continue
            if message.get("id") != wanted:
                continue   # a late answer to a command that timed out
            if message.get("type") == "error":
                raise BiDiError("%s: %s: %s" % (method, message.get("error"), message.get("message")))
            return message["result"]

    def navigate(self, url, wait="complete"):
        return self.command("browsingContext.navigate", {"context": self.context, "url": url, "wait": wait})

    def run(self, body, *args):
        """Run BODY as the body of an async function (as Selenium's execute_script
        would: `return` gives the value, `arguments` holds ARGS) and return its
        result as JSON-decoded Python."""
        declaration = ("async function (__args) { const __value = await (async function () {\n%s\n})"
                       ".apply(null, JSON.parse(__args));"
                       " return JSON.stringify(__value === undefined ? null : __value); }" % body)
        result = self.command("script.callFunction", {
            "functionDeclaration": declaration, "awaitPromise": True,
            "target": {"context": self.context},
            "arguments": [{"type": "string", "value": json.dumps(list(args))}],
            "resultOwnership": "none",
        })
        if result.get("type") == "exception":
            details = result.get("exceptionDetails", {})
            raise BiDiError("script threw: %s" % details.get("text", details))
        value = result["result"]
        if value.get("type") != "string":
            raise BiDiError("script returned %r" % (value,))
        return json.loads(value["value"])

    def evaluate(self, expression):
        """The value of a JavaScript expression (awaited if it is a promise)."""
        return self.run("return (%s);" % expression)

    def perform_actions(self, actions):
        """input.performActions: a list of input sources (key, pointer, wheel, none)."""
        self.command("input.performActions", {"context": self.context, "actions": actions})
        self.command("input.releaseActions", {"context": self.context})

    def type_keys(self, keys, source="keyboard"):
        """Press and release each key value in turn (a character or a WebDriver key such as "\\ue007")."""
        steps = []
        for key in keys:
            steps += [{"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]
        self.perform_actions([{"type": "key", "id": source, "actions": steps}])

    def screenshot(self):
        """The viewport as PNG bytes."""
        out = self.command("browsingContext.captureScreenshot", {"context": self.context})
        return base64.b64decode(out["data"])


def write_profile(path):
    with open(os.path.join(path, "user.js"), "w", encoding="utf-8") as handle:
        for name, value in sorted(NO_NETWORK_PREFS.items()):
            handle.write("user_pref(%s, %s);\n" % (json.dumps(name), json.dumps(value)))


def wait_for_endpoint(proc, log_path, timeout=START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log_path, encoding="utf-8", errors="replace") as handle:
            match = LISTENING_RE.search(handle.read())
        if match:
            return match.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        raise RuntimeError("Firefox (exit %r) printed no BiDi endpoint in %gs:\n%s" % (
            proc.poll(), timeout, handle.read()[-4000:]))


@contextlib.contextmanager
def firefox(window="1280,800"):
    """A headless firefox-esr with a fresh, offline profile and a WINDOW ("w,h")
    viewport; yields a Firefox session."""
    exe = realpeers.require_tool("firefox-esr")

    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    profile = tempfile.mkdtemp(prefix="wsproxy-firefox-")
    write_profile(profile)
    log_path = os.path.join(profile, "firefox.log")
    # MOZ_CRASHREPORTER_DISABLE: no crash report upload attempts either.
    env = dict(os.environ, MOZ_HEADLESS="1", MOZ_CRASHREPORTER_DISABLE="1")
    env.pop("DISPLAY", None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([exe, "--headless", "--no-remote", "--profile", profile,
                                 "--remote-debugging-port", "0", "about:blank"],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    try:
        endpoint = wait_for_endpoint(proc, log_path)
        if not endpoint.startswith("ws://127.0.0.1:"):
            raise RuntimeError("BiDi endpoint is not on loopback: %s" % endpoint)
        # Screenshots and framebuffer dumps are large messages.
        with connect(endpoint + "/session", max_size=None, open_timeout=START_TIMEOUT) as ws:
            browser = Firefox(ws, proc, version)
            browser.command("session.new", {"capabilities": {}})
            tree = browser.command("browsingContext.getTree", {"maxDepth": 0})
            browser.context = tree["contexts"][0]["context"]
            width, height = (int(n) for n in window.split(","))
            browser.command("browsingContext.setViewport", {"context": browser.context,
                                                            "viewport": {"width": width, "height": height}})
            browser.command("session.subscribe", {"events": ["log.entryAdded"]})
            try:
                yield browser
            finally:
                # Best effort: the PID stop below is the guarantee.
                with contextlib.suppress(OSError, websockets.exceptions.WebSocketException):
                    ws.send(json.dumps({"id": 1 << 30, "method": "browser.close", "params": {}}))
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(10)
    finally:
        realpeers.stop(proc, timeout=10)
        shutil.rmtree(profile, ignore_errors=True)
