"""A waiting phone in a real browser (Debian's Chromium via Playwright, the real stack): it moves on
by itself when its round opens and when it closes, and in between asks only the shared status."""
import re

import pytest
from playwright.sync_api import expect

from .browser_fixtures import PHONE, POLL, assert_not_reloaded, mark_page, tick_right_answers

pytestmark = [pytest.mark.browser, pytest.mark.live]


class Requests:
    """What the page asked for, and the status codes it got back."""

    def __init__(self, page):
        self.seen: list[tuple[str, int]] = []
        page.on("response", lambda response: self.seen.append((response.url, response.status)))

    def clear(self) -> None:
        self.seen.clear()

    def paths(self) -> list[str]:
        return [re.sub(r"^https?://[^/]+", "", url) for url, _ in self.seen]

    def status_polls(self) -> list[int]:
        return [code for url, code in self.seen if url.endswith("/api/status")]


def test_a_waiting_phone_moves_on_by_itself_and_polls_only_the_status(stack, api, new_page):
    link = api.register("Dale Cooper", 61)["form_urls"]["1"]
    path = re.sub(r"^https?://[^/]+", "", link)
    page = new_page(**PHONE)
    asked = Requests(page)
    page.goto(link)
    expect(page.get_by_role("heading", name="Not started yet")).to_be_visible()
    mark_page(page)
    # Nothing changes: the phone asks the status and gets 304s (no body), nothing else.
    page.wait_for_event("response", lambda r: r.url.endswith("/api/status"), timeout=POLL)
    asked.clear()
    page.wait_for_event("response", lambda r: r.url.endswith("/api/status"), timeout=POLL)
    assert asked.status_polls() == [304] and asked.paths() == ["/api/status"]

    asked.clear()
    api.start(1)
    expect(page.get_by_role("heading", name="Ready?")).to_be_visible(timeout=POLL)
    assert_not_reloaded(page)
    # One fetch of its own page, when the status said the version changed.
    assert [p for p in asked.paths() if p != "/api/status"] == [path]
    assert asked.status_polls()[-1] == 200

    page.get_by_role("button", name="Start").click()
    tick_right_answers(page, 1)
    page.get_by_role("button", name="Submit answers").click()
    expect(page.get_by_role("heading", name="Answers in")).to_be_visible()
    mark_page(page)
    page.wait_for_event("response", lambda r: r.url.endswith("/api/status"), timeout=POLL)

    asked.clear()
    api.end(1)
    expect(page.locator("#round-state")).to_contain_text("ranked 1", timeout=POLL)
    assert_not_reloaded(page)
    assert [p for p in asked.paths() if p != "/api/status"] == [path]
    # The result page waits no more: no status poll after it.
    expect(page.locator("[data-status-version]")).to_have_count(0)
