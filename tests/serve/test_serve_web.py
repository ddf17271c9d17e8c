"""The web chat in real headless Chromium: send a message, watch the reply stream in with
the user turn's intent, click 👍, and find the feedback in the log database.

Needs the ``playwright`` Python package and a system Chromium (Debian: ``apt-get install
chromium``); the browser is never downloaded. Skipped, with the reason, when either is
missing.
"""

from __future__ import annotations

import os
import shutil

import pytest

from dialogtune.serve import ServeSettings, create_app
from dialogtune.serve.runtime import BackgroundServer
from helpers import SlowChat, db_rows

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("DIALOGTUNE_CHROMIUM"), "/usr/bin/chromium",
                      shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the playwright Python package is not installed")
    executable = chromium_path()
    if executable is None:
        pytest.skip("no chromium executable found (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS,
                                              headless=True)
        yield launched
        launched.close()


def test_web_chat_streams_shows_intent_and_records_feedback(browser, predictors, tmp_path):
    intent, chat = predictors
    db = tmp_path / "web.db"
    app = create_app(ServeSettings(log_db=str(db), default_max_tokens=12), intent,
                     SlowChat(chat))
    with BackgroundServer(app) as server:
        page = browser.new_page(bypass_csp=True)  # lets the test evaluate its own probes
        page.goto(server.url + "/")
        page.wait_for_function("document.getElementById('models').textContent.includes('chat')")
        page.evaluate("""() => { window.updates = 0; new MutationObserver(() => window.updates++)
            .observe(document.getElementById('log'), {subtree: true, characterData: true,
                                                      childList: true}); }""")
        page.click("#settings summary")
        page.fill("#max-tokens", "12")
        page.fill("#input", "my card was lost")
        page.click("#send")
        bot = page.locator(".message.assistant").first
        bot.locator(".feedback-up").wait_for(timeout=30_000)
        reply = bot.locator(".content").inner_text()
        assert len(reply.split()) == 12
        assert page.evaluate("window.updates") >= 6  # the reply arrived piece by piece
        badge = page.locator(".message.user .intent").first.inner_text()
        assert badge.startswith("intent: ") and "%" in badge
        completion_id = bot.get_attribute("data-completion-id")
        bot.locator(".feedback-up").click()
        page.wait_for_function(
            "document.querySelector('.feedback-status').textContent.includes('thanks')")
        page.close()
    (row,) = [r for r in db_rows(db) if r["id"] == completion_id]
    assert row["reply"] == reply and row["intent"] in badge
    assert [(f["completion_id"], f["rating"]) for f in db_rows(db, "feedback")] == \
        [(completion_id, "up")]


def test_api_docs_render_offline(browser, predictors):
    """/docs (Swagger UI) and /redoc run from the server's own scripts and styles, no CDN.

    (ReDoc's "powered by" footer still points an <img> at cdn.redoc.ly; offline it is only
    a missing logo, so images are left out of the check.)
    """
    intent, chat = predictors
    with BackgroundServer(create_app(ServeSettings(), intent, chat)) as server:
        page = browser.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url)
                if request.resource_type != "image" else None)
        page.goto(server.url + "/docs")
        page.locator(".swagger-ui .info .title").wait_for(timeout=30_000)
        assert "dialogtune" in page.locator(".swagger-ui .info .title").inner_text()
        page.get_by_text("/v1/chat/completions").first.wait_for(timeout=30_000)
        page.goto(server.url + "/redoc")
        page.get_by_text("/v1/intents").first.wait_for(timeout=30_000)
        page.close()
    foreign = [url for url in requested
               if not url.startswith((server.url, "blob:" + server.url))]
    assert not foreign, foreign
    assert any(url.endswith("swagger-ui-bundle.js") for url in requested)
