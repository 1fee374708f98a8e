"""Browser tests: Debian's Chromium through sync Playwright, against a live test server.

Fixtures (all reuse the root conftest's `app`, so the same database and Redis):

- ``browser`` (session): one headless Chromium for the whole run.
- ``live_server`` -> :class:`LiveServer` (``.url``, ``.port``, ``.app``, ``.errors``): the
  test's ``app`` served over HTTP on 127.0.0.1 by a threaded werkzeug server, so
  long-lived requests (event streams) do not block other requests. Unhandled
  exceptions in the app are collected in ``.errors`` and fail the test at
  teardown; a test that provokes one on purpose clears the list.
- ``new_page(**context_options) -> Page``: a page in a fresh browser context (its
  own cookies) with ``base_url`` set to the live server; call it again for a
  second user.
- ``csp_violations`` -> ``list[str]``: Content-Security-Policy violations on any
  page ``new_page`` made (the ``securitypolicyviolation`` event and Chromium's
  console report); any fails the test at teardown, so every browser test checks
  the policy. A test that provokes one on purpose clears the list.
- ``page``: the first such page.
- ``signed_in(user, on=None, password=PASSWORD) -> Page``: signs ``user`` (a User or
  an email) in through the real login form on ``on`` (default: ``page``) and
  returns that page on the landing page; fails with the page's message if the
  browser is still on /login.
- ``wait_for(page, expression, arg=None, timeout=...)``: ``page.wait_for_function``
  without eval in the page (the Content-Security-Policy refuses it there).
- ``axe_check(page, context=None, disable=()) -> dict``: runs axe-core (WCAG 2.0/2.1
  A/AA and 2.2 AA, ``target-size`` on) and asserts there are no violations;
  the same function is importable as ``tests.browser.conftest.run_axe``.

CSRF protection is on for browser tests (as in production); override the
``app_config`` fixture in a test module to change the app's configuration.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from flask import Flask
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, expect, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

from dashboard.queues import WORKER_QUEUES
from tests import factories

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEFAULT_TIMEOUT_MS = 15_000  # generous: CI shares 2 cores between the browser, the server and a worker
expect.set_options(timeout=DEFAULT_TIMEOUT_MS)

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
_axe = Axe()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # This hook sees every collected item, not only those below this directory.
    for item in items:
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.browser)


# --- browser -----------------------------------------------------------------


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (set CHROMIUM_PATH)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


# --- live server -----------------------------------------------------------------


@dataclass
class LiveServer:
    app: Flask
    server: BaseWSGIServer
    thread: threading.Thread
    errors: list[BaseException] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.server_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __str__(self) -> str:
        return self.url


@pytest.fixture()
def app_config() -> dict:
    """Browser tests post real forms, so CSRF protection is on as in production."""
    return {"WTF_CSRF_ENABLED": True}


@pytest.fixture()
def live_server(app: Flask) -> Iterator[LiveServer]:
    """The test's app on a free port, serving requests concurrently (one thread each)."""
    errors: list[BaseException] = []

    def wsgi(environ: dict, start_response: Callable) -> Iterable[bytes]:
        try:
            return app(environ, start_response)
        except BaseException as exc:  # recorded for the test, then werkzeug answers 500
            errors.append(exc)
            raise

    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    server.daemon_threads = True  # request threads (event streams) never block shutdown
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"live-server-{server.server_port}", daemon=True)
    thread.start()
    live = LiveServer(app=app, server=server, thread=thread, errors=errors)
    try:
        yield live
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    if errors:
        details = "\n".join("".join(traceback.format_exception(e)) for e in errors)
        pytest.fail(f"the live server raised {len(errors)} unhandled exception(s):\n{details}", pytrace=False)


# --- pages -----------------------------------------------------------------


@pytest.fixture()
def csp_violations() -> list[str]:
    """Content-Security-Policy violations seen on the pages `new_page` made; any fails the test at
    teardown (a test that provokes one on purpose clears the list)."""
    return []


@pytest.fixture()
def new_page(browser: Browser, live_server: LiveServer, csp_violations: list[str]) -> Iterator[Callable[..., Page]]:
    """Factory: a page in a new browser context (own cookies) pointed at the live server, watched for
    Content-Security-Policy violations."""
    contexts = []

    def _new_page(**context_options: Any) -> Page:
        context_options.setdefault("base_url", live_server.url)
        context = browser.new_context(**context_options)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
        watch_csp(context, csp_violations)
        contexts.append(context)
        return context.new_page()

    yield _new_page
    for context in contexts:
        context.close()
    if csp_violations:
        pytest.fail(f"{len(csp_violations)} Content-Security-Policy violation(s):\n" + "\n".join(csp_violations),
                    pytrace=False)


@pytest.fixture()
def page(new_page: Callable[..., Page]) -> Page:
    return new_page()


@pytest.fixture()
def signed_in(page: Page) -> Callable[..., Page]:
    """Sign a user (a User or an email address) in through the login form; returns the page."""

    def _signed_in(user: Any, on: Page | None = None, password: str = factories.PASSWORD) -> Page:
        target = on or page
        email = user if isinstance(user, str) else user.email
        target.goto("/login")
        target.get_by_label("Email", exact=True).fill(email)
        target.get_by_label("Password", exact=True).fill(password)
        with target.expect_navigation():
            target.get_by_role("button", name="Sign in").click()
        if urlsplit(target.url).path == "/login":
            raise AssertionError(f"sign-in as {email} failed: {target.locator('main').inner_text()[:300]}")
        return target

    return _signed_in


# --- Content-Security-Policy ---------------------------------------------------

# The DOM reports each violation as a `securitypolicyviolation` event; Chromium also logs it to the console.
CSP_RECORDER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolation(`${location.pathname}${location.search}: ${e.violatedDirective} blocked ` +
    `${e.blockedURI || "(inline)"} at ${e.sourceFile || "?"}:${e.lineNumber} ${e.sample || ""}`);
});
"""


def watch_csp(context: BrowserContext, found: list[str]) -> None:
    """Append every CSP violation on the context's pages to `found`."""
    context.expose_binding("__cspViolation", lambda _source, text: found.append(text))
    context.add_init_script(CSP_RECORDER)

    def console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            found.append(f"console {message.type}: {message.text}")

    context.on("console", console)


# --- axe -----------------------------------------------------------------


def run_axe(page: Page, context: Any = None, disable: Iterable[str] = ()) -> dict:
    """Run axe-core on the page (or `context`, an axe context such as "#tray-panel")
    and assert there are no violations, nor aria-describedby/aria-labelledby
    pointing at ids that do not exist. `disable` switches axe rules off by id
    (say why at the call site). Returns axe's results (violations only)."""
    __tracebackhide__ = True
    rules: dict[str, dict[str, bool]] = {"target-size": {"enabled": True}}
    rules.update({rule: {"enabled": False} for rule in disable})
    options = {
        "runOnly": {"type": "tag", "values": AXE_TAGS},
        "rules": rules,
        "resultTypes": ["violations"],
    }
    results = _axe.run(page, context=context, options=options).response
    violations = results["violations"]
    if violations:
        raise AssertionError(_describe(page.url, violations))
    dangling = page.evaluate(_DANGLING_REFERENCES_JS)
    if dangling:
        raise AssertionError(f"ARIA references to missing ids on {page.url}:\n" + "\n".join(dangling))
    return results


# axe only reports a dangling aria-describedby/-labelledby as "needs review"; it is always a bug.
_DANGLING_REFERENCES_JS = """() => {
  const found = [];
  for (const attr of ["aria-describedby", "aria-labelledby"]) {
    for (const el of document.querySelectorAll(`[${attr}]`)) {
      const missing = el.getAttribute(attr).split(/\\s+/).filter(id => id && !document.getElementById(id));
      if (missing.length) found.push(`- ${el.outerHTML.slice(0, 160)}: ${attr} -> ${missing.join(", ")}`);
    }
  }
  return found;
}"""


def _describe(url: str, violations: list[dict]) -> str:
    lines = [f"axe found {len(violations)} violation(s) on {url}:"]
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} [{len(v['nodes'])} element(s)] {v['helpUrl']}")
        for node in v["nodes"][:3]:
            target = " ".join(str(t) for t in node["target"])
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            lines.append(f"    {target}: {node['html'][:160]}")
            if summary:
                lines.append(f"      {summary[:300]}")
    return "\n".join(lines)


@pytest.fixture()
def axe_check() -> Callable[..., dict]:
    return run_axe


# --- a real RQ worker --------------------------------------------------------


@pytest.fixture()
def rq_worker(app: Flask, tmp_path: Any) -> Iterator[subprocess.Popen]:
    """A real `rq worker` process (alerts first, then deliveries, then sync) on the test's database and Redis."""
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": app.config["REDIS_URL"],
           "INSTANCE_PATH": str(tmp_path)}
    process = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "rq"), "worker", "--quiet", "--worker-class",
         "jobs.worker.AppWorker", "--url", app.config["REDIS_URL"], "--path", os.getcwd(), *WORKER_QUEUES],
        env=env, start_new_session=True,
    )
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for(page: Page, expression: str, arg: Any = None, timeout: float = DEFAULT_TIMEOUT_MS) -> Any:
    """Wait until `expression` (a JavaScript expression, or a function of `arg`) is truthy in the page;
    returns its value.

    Not `page.wait_for_function`: that polls by eval inside the page, which the Content-Security-Policy
    refuses. This evaluates from here every 50 ms instead."""
    __tracebackhide__ = True
    deadline = time.monotonic() + timeout / 1000
    while True:
        value = page.evaluate(expression, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} ms for {expression} ({arg!r}) on {page.url}")
        page.wait_for_timeout(50)


def wait_live(page: Page) -> None:
    """Wait until the page's event stream is open."""
    wait_for(page, "document.body.dataset.live === 'open'", timeout=10_000)


ANNOUNCEMENT_RECORDER = """
window.__announced = [];
document.addEventListener('DOMContentLoaded', () => {
  const region = document.getElementById('sr-status');
  new MutationObserver(() => {
    if (region.textContent) { window.__announced.push(region.textContent); }
  }).observe(region, {subtree: true, childList: true, characterData: true});
});
"""
