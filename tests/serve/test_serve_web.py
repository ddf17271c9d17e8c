"""The web chat in real headless Chromium: send a message, watch the reply stream in with
the user turn's intent, click "Good", and find the feedback in the log database; tool
calls and their results shown apart from the words; feedback buttons that draw without
an emoji font.

Needs the ``playwright`` Python package and a system Chromium (Debian: ``apt-get install
chromium``); the browser is never downloaded. Skipped, with the reason, when either is
missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from dialogtune.serve import ServeSettings, create_app
from dialogtune.serve.app import STATIC
from dialogtune.serve.runtime import BackgroundServer
from helpers import TOOLS, SlowChat, ToolChat, db_rows

# pictographs, dingbats, symbols, flags and the emoji variation selector: code points that
# need an emoji font (a stock Debian Chromium draws them as empty boxes)
EMOJI = re.compile("[\u2600-\u27bf\u2b00-\u2bff\ufe0e\ufe0f\U0001f000-\U0001faff]")

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


def test_static_files_hold_no_emoji():
    files = sorted(STATIC.iterdir())
    assert {f.name for f in files} >= {"app.js", "tools.js", "index.html", "style.css"}
    found = {f.name: EMOJI.findall(f.read_text(encoding="utf-8")) for f in files}
    assert not any(found.values()), found
    assert EMOJI.findall("\U0001f44d \U0001f44e")  # the pattern itself catches the old icons


def open_chat(browser, server):
    page = browser.new_page()
    page.goto(server.url + "/")
    page.wait_for_function("document.getElementById('models').textContent.includes('chat')")
    page.click("#settings summary")
    page.fill("#max-tokens", "4")
    return page


def test_feedback_buttons_draw_without_an_emoji_font(browser, predictors, tmp_path):
    intent, chat = predictors
    app = create_app(ServeSettings(log_db=str(tmp_path / "web.db")), intent, chat)
    with BackgroundServer(app) as server:
        page = open_chat(browser, server)
        page.fill("#input", "hello")
        page.click("#send")
        bar = page.locator(".message.assistant .feedback").first
        bar.wait_for(timeout=30_000)
        for rating, word in (("up", "Good"), ("down", "Bad")):
            button = bar.locator(f".feedback-{rating}")
            assert button.inner_text().strip() == word
            assert button.bounding_box()["width"] > 20 and button.bounding_box()["height"] > 8
            icon = button.locator("svg path")
            box = icon.bounding_box()  # the drawn stroke itself, not an empty box
            assert box is not None and box["width"] > 4 and box["height"] > 4
            text = page.evaluate("(el) => el.textContent", button.element_handle())
            assert not EMOJI.findall(text) and text.isascii()
        page.close()


def test_web_chat_shows_tool_calls_and_results(browser, predictors, tmp_path):
    intent, chat = predictors
    db = tmp_path / "web.db"
    app = create_app(ServeSettings(log_db=str(db)), intent, ToolChat(chat, words=2, eager=True))
    with BackgroundServer(app) as server:
        page = open_chat(browser, server)
        page.fill("#tools", json.dumps(TOOLS))
        page.fill("#input", "what is my balance")
        page.click("#send")
        call = page.locator(".message.assistant .tool-call").first
        call.wait_for(timeout=30_000)
        assert call.locator(".tool-name").inner_text() == "get_balance"
        call_id = call.get_attribute("data-call-id")
        assert json.loads(call.locator(".tool-arguments").inner_text()) == {"account": "checking"}
        words = page.locator(".message.assistant .content").first.inner_text()
        assert len(words.split()) == 2 and "get_balance" not in words  # apart from the call
        page.fill(".tool-result-input", '{"balance": 125.0}')
        page.click(".tool-results button")
        result = page.locator(".message.tool").first
        result.wait_for(timeout=30_000)
        assert result.locator(".tool-label").inner_text() == "result of get_balance"
        assert result.locator(".content").inner_text() == '{"balance": 125.0}'
        answer = page.locator(".message.assistant").nth(1)
        answer.locator(".feedback-up").wait_for(timeout=30_000)
        assert len(answer.locator(".content").inner_text().split()) == 4
        assert answer.locator(".tool-call").count() == 0 and page.locator(".tool-results").count() == 0
        page.close()
    first, second = db_rows(db)
    (logged_call,) = json.loads(first["tool_calls"])
    assert logged_call["id"] == call_id and first["reply"] == words
    history = json.loads(second["messages"])
    assert [m["role"] for m in history] == ["user", "assistant", "tool"]
    assert history[1]["tool_calls"] == [logged_call] and history[1]["content"] == words
    assert history[2]["tool_call_id"] == logged_call["id"]
    assert history[2]["content"] == '{"balance": 125.0}'
