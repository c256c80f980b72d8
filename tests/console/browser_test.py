#!/usr/bin/env python3
"""The operators' console in a real browser (Debian's headless Chromium,
driven by Selenium) against a real batond whose bank-d participant keeps
failing its rollbacks, so that a transaction is stuck.

An operator signs in, finds the stuck transaction from the overview, reads
its branch's error, presses retry, then force rollback with a reason; the
outcome is checked with batonctl and in the audit records. A request
without a session and a state change without the CSRF token are refused.
Screenshots of every page at a laptop's and a phone's width (and in dark
mode, which must keep text light on dark) land in
--screenshots; any JavaScript error in the browser's log fails the test.

Usage: browser_test.py --bin-dir build/bin --proto-dir proto --screenshots DIR
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))
import harness  # noqa: E402
from harness import wait_for  # noqa: E402

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.common.exceptions import (  # noqa: E402
    StaleElementReferenceException)

SCREENSHOTS = None
WIDTHS = {"laptop": (1280, 900), "phone": (390, 844)}


def read_port(path):
    """The port a port file holds, or None until it is written."""
    try:
        with open(path) as f:
            return int(f.read().strip() or 0) or None
    except (FileNotFoundError, ValueError):
        return None


def open_url(url, data=None, headers=None):
    """(status, body) of one request, not following the proxy settings."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with opener.open(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Bank:
    """One bank_service process attached to the coordinator."""

    def __init__(self, c, resource, seed, env=None):
        self.dir = tempfile.mkdtemp(prefix=f"baton-console-{resource}-",
                                    dir=c.dir)
        port_file = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "log"), "wb")
        full_env = dict(os.environ)
        full_env.pop("BATON_FAILPOINTS", None)
        full_env.update(env or {})
        self.proc = harness._spawn(
            [os.path.join(harness.BIN_DIR, "bank_service"), "--resource",
             resource, "--listen", "127.0.0.1:0", "--port-file", port_file,
             "--coordinator", f"127.0.0.1:{c.port}", "--data-dir",
             os.path.join(self.dir, "data"), "--seed", seed],
            stdin=subprocess.DEVNULL, stdout=self.log,
            stderr=subprocess.STDOUT, env=full_env)
        harness._live_processes.add(self.proc)
        self.port = wait_for(lambda: read_port(port_file), 30,
                             f"{resource}'s port file")

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.log.close()


def start_browser(scratch):
    """Headless Chromium that logs the page's console, its profile in
    `scratch`."""
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--disable-quic", "--no-first-run",
                 "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--no-proxy-server",
                 f"--user-data-dir={tempfile.mkdtemp(dir=scratch)}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(
        service=Service("/usr/bin/chromedriver"), options=options)
    browser.set_window_size(*WIDTHS["laptop"])
    return browser


class BrowserCase(unittest.TestCase):
    """What every console test does with its browser (cls.browser)."""

    def find(self, css, timeout=15):
        """The first element matching `css` once it is displayed. The page
        renders again as answers come, so an element found may be replaced
        while it is looked at: then it is looked for again."""
        def shown():
            try:
                for e in self.browser.find_elements(By.CSS_SELECTOR, css):
                    if e.is_displayed():
                        return e
            except StaleElementReferenceException:
                pass
            return None
        return wait_for(shown, timeout, f"{css} on the page")

    def text(self, css):
        """The text of `css` as shown now ("" while it is being replaced)."""
        try:
            return self.find(css).text
        except StaleElementReferenceException:
            return ""

    def wait_text(self, css, part, what, timeout=15):
        wait_for(lambda: part in self.text(css).lower(), timeout, what)

    def screenshots(self, page):
        for width, size in WIDTHS.items():
            self.browser.set_window_size(*size)
            self.browser.save_screenshot(
                os.path.join(SCREENSHOTS, f"{page}-{width}.png"))
        self.browser.set_window_size(*WIDTHS["laptop"])

    def luminance(self, css, prop):
        """The relative luminance (0 black .. 1 white) of a colour
        property of `css`, as the browser computed it."""
        rgb = self.browser.execute_script(
            "return getComputedStyle(document.querySelector(arguments[0]))"
            "[arguments[1]];", css, prop)
        r, g, b = [int(v) / 255 for v in
                   rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3]]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    def assert_readable_in_dark_mode(self, page):
        """With the system in dark mode the page turns dark and its text
        light, with contrast to spare; a screenshot of it lands beside the
        others."""
        self.browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        try:
            wait_for(lambda: self.luminance("body", "backgroundColor") < 0.1,
                     10, "a dark background")
            for css in ("body", "h1", ".panel"):
                self.assertGreater(self.luminance(css, "color"), 0.6, css)
            self.browser.save_screenshot(
                os.path.join(SCREENSHOTS, f"{page}-dark.png"))
        finally:
            self.browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                         {"features": []})

    def assert_no_javascript_errors(self):
        errors = []
        for entry in self.browser.get_log("browser"):
            message = entry["message"]
            # Chromium logs every 4xx answer to fetch; the page shows those
            # itself (an anonymous /api/session is how it learns it must
            # ask for the token).
            if "Failed to load resource" in message:
                continue
            if entry["level"] == "SEVERE":
                errors.append(message)
        self.assertEqual(errors, [])

    def confirm(self, button, reason=""):
        self.find(f"#{button}").click()
        self.find("#confirm")
        if reason:
            self.find("#confirm-reason").send_keys(reason)
        self.find("#confirm-ok").click()

    def sign_in(self, base, token):
        self.browser.get(base + "/")
        self.find("#token").send_keys(token)
        self.find("#signin-submit").click()
        self.find("#needs-attention-link")


class Console(BrowserCase):
    @classmethod
    def setUpClass(cls):
        c = harness.Coordinator("--retry-window-ms", "300",
                                "--console-listen", "127.0.0.1:0")
        cls.c = c
        console_port_file = os.path.join(c.dir, "console.port")
        c.extra_args += ["--console-port-file", console_port_file]
        c.start()
        cls.base = "http://127.0.0.1:{}".format(
            wait_for(lambda: read_port(console_port_file), 30,
                     "the console's port file"))
        cls.banks = [Bank(c, "bank-c", "carol=100"),
                     Bank(c, "bank-d", "dave=50",
                          {"BATON_FAILPOINTS":
                           "participant_before_rollback=error"})]
        carol, dave = cls.banks
        out = subprocess.run(
            [os.path.join(harness.BIN_DIR, "bank_client"), "--coordinator",
             f"127.0.0.1:{c.port}", "transfer", "--from",
             f"127.0.0.1:{dave.port}/dave", "--to",
             f"127.0.0.1:{carol.port}/carol", "--amount", "20", "--rollback",
             "--no-wait"], capture_output=True, text=True, timeout=60)
        words = out.stdout.split()
        assert words and words[0] == "rolled-back", out.stdout + out.stderr
        cls.xid = words[1]
        c.wait_status(cls.xid, c.pb.types.GLOBAL_STATUS_ROLLBACK_STUCK, 30)

        cls.browser = start_browser(c.dir)

    @classmethod
    def tearDownClass(cls):
        cls.browser.quit()
        for bank in cls.banks:
            bank.stop()
        cls.c.stop()

    # -- the test, in the order an operator would go --

    def test_an_operator_resolves_a_stuck_transaction(self):
        b = self.browser
        b.get(self.base + "/")
        self.find("#signin")
        self.screenshots("signin")
        self.find("#token").send_keys("not the token")
        self.find("#signin-submit").click()
        wait_for(lambda: self.text("#error").strip(), 10, "an error")
        token = self.find("#token")
        token.clear()
        token.send_keys(self.c.token)
        self.find("#signin-submit").click()

        # The overview puts what needs attention first.
        self.find("#needs-attention-link")
        self.find("#rate-chart")
        self.wait_text("#counts", "rollback",
                       "the stuck transaction counted on the overview")
        self.screenshots("overview")
        self.assert_readable_in_dark_mode("overview")
        self.find("#needs-attention-link").click()
        self.find(f'[data-xid="{self.xid}"]')
        self.screenshots("transactions")
        self.find(f'[data-xid="{self.xid}"] a').click()

        # Its page shows the failing branch's error.
        self.wait_text("#branches", "bank-d", "bank-d's branch")
        self.wait_text("#branches", "participant_before_rollback",
                       "bank-d's last error")
        self.screenshots("transaction")
        self.assert_readable_in_dark_mode("transaction")

        self.confirm("action-retry")
        self.wait_text("#audit", "retry", "the retry in the audit")
        self.confirm("action-force-rollback", "dave's hold released by hand")
        self.wait_text("#action-result", "rolled", "the force rollback's result")
        self.wait_text("#audit", "force-rollback",
                       "the audit record on the page")

        # batonctl sees the same outcome and audit.
        show = subprocess.run(
            [os.path.join(harness.BIN_DIR, "batonctl"), "--coordinator",
             f"127.0.0.1:{self.c.port}", "--token-file", self.c.token_file,
             "--json", "show", self.xid],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(show.returncode, 0, show.stderr)
        shown = json.loads(show.stdout)
        self.assertEqual(shown["status"], "GLOBAL_STATUS_ROLLED_BACK")
        actions = [a["action"] for a in shown["audit"]]
        self.assertEqual(actions, ["retry", "force-rollback"])
        self.assertEqual(shown["audit"][1]["reason"],
                         "dave's hold released by hand")
        self.assertEqual(shown["audit"][1]["actor"], "console")

        self.find("#nav-participants").click()
        self.find("#participants")
        self.screenshots("participants")
        self.assert_no_javascript_errors()

        # Without a session nothing is served; without the CSRF token
        # nothing changes, even with the session's cookie.
        status, _ = open_url(self.base + "/api/overview")
        self.assertEqual(status, 401)
        cookie = b.get_cookie("baton_console")
        self.assertIsNotNone(cookie)
        self.assertTrue(cookie["httpOnly"])
        self.assertEqual(cookie.get("sameSite"), "Strict")
        status, body = open_url(
            f"{self.base}/api/transactions/{self.xid}/pause", data=b"{}",
            headers={"Cookie": f"baton_console={cookie['value']}",
                     "Content-Type": "application/json"})
        self.assertEqual(status, 403, body)
        self.assertFalse(self.c.get(self.xid).paused)



class ClusterConsole(BrowserCase):
    """Three nodes, one shard each; the console of node 0 shows them all."""

    @classmethod
    def setUpClass(cls):
        cls.nodes = []
        for node_id in range(3):
            peers = ",".join(f"127.0.0.1:{n.port}" for n in cls.nodes)
            args = ["--node-id", str(node_id), "--topology-poll-ms", "100"]
            if peers:
                args += ["--peers", peers]
            n = harness.Coordinator(*args, name=f"batond-{node_id}")
            if cls.nodes:  # One admin token for the whole cluster.
                n.token, n.token_file = cls.nodes[0].token, cls.nodes[0].token_file
                n.admin_md = cls.nodes[0].admin_md
            if node_id == 0:
                port_file = os.path.join(n.dir, "console.port")
                n.extra_args += ["--console-listen", "127.0.0.1:0",
                                 "--console-port-file", port_file]
            cls.nodes.append(n.start())
        cls.base = "http://127.0.0.1:{}".format(
            wait_for(lambda: read_port(port_file), 30,
                     "the console's port file"))
        ts = cls.nodes[0].pb.transaction_service
        cls.xids = [n.tx.Begin(ts.BeginRequest(name=f"order-{i}"),
                               timeout=10).xid
                    for n in cls.nodes for i in range(2)]
        cls.browser = start_browser(cls.nodes[0].dir)

    @classmethod
    def tearDownClass(cls):
        cls.browser.quit()
        for n in cls.nodes:
            n.stop()

    def test_the_console_of_one_node_shows_and_acts_on_every_node(self):
        self.sign_in(self.base, self.nodes[0].token)
        # Every node, and the transactions of all three, on one page.
        def serving_nodes():
            try:
                return len([b for b in self.browser.find_elements(
                    By.CSS_SELECTOR, "#nodes tbody tr td:nth-child(3) .badge")
                    if b.text == "serving"])
            except StaleElementReferenceException:
                return 0
        wait_for(lambda: serving_nodes() == 3 and
                 self.text("#stat-unfinished").startswith("6"), 20,
                 "three serving nodes and six unfinished transactions")
        self.screenshots("cluster-overview")
        self.find("#stat-unfinished a").click()
        for xid in self.xids:
            self.find(f'[data-xid="{xid}"]')

        # One of node 2's, acted on from node 0's console.
        on_node_2 = next(x for x in self.xids if x.startswith("2-"))
        self.find(f'[data-xid="{on_node_2}"] a').click()
        self.find(f'.tx[data-xid="{on_node_2}"]')
        self.confirm("action-force-rollback", "cancelled by the shop")
        self.wait_text("#action-result", "rolled", "the force rollback's result")
        t = self.nodes[2].get(on_node_2)
        self.assertEqual(t.status,
                         self.nodes[2].pb.types.GLOBAL_STATUS_ROLLED_BACK)
        self.assertEqual([a.actor for a in t.audit], ["console"])

        # A node that stops answering is named, with its shard.
        self.nodes[2].kill9()
        self.find("#nav-overview").click()
        self.wait_text("#missing-nodes", "node 2", "node 2 named as missing",
                       timeout=20)
        self.assertIn("shard 2", self.text("#missing-nodes"))
        self.wait_text("#nodes", "unreachable", "node 2 unreachable",
                       timeout=20)
        self.screenshots("cluster-node-down")
        self.assert_no_javascript_errors()

def main():
    global SCREENSHOTS
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--proto-dir", required=True)
    parser.add_argument("--screenshots", required=True)
    args, rest = parser.parse_known_args()
    harness.configure(args.bin_dir, args.proto_dir)
    SCREENSHOTS = os.path.abspath(args.screenshots)
    os.makedirs(SCREENSHOTS, exist_ok=True)
    unittest.main(argv=[sys.argv[0]] + rest)


if __name__ == "__main__":
    main()
