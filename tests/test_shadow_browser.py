"""The shadow league in a real browser (Debian's Chromium via Playwright, the real stack): a
knocked-out player plays round 2 on a phone, and the projector shows the shadow league in its own
panel, live."""
from pathlib import Path

import pytest

from .browser_fixtures import (PHONE, POLL, PROJECTOR, assert_not_reloaded, fits_phone, mark_page,
                               stage_fits, tick_right_answers)
from .players import answer_over_http

from playwright.sync_api import expect  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.live]

DOCS = Path(__file__).resolve().parent.parent / "docs"
HERO = "Linus Torvalds-Featherstonehaugh"


def test_a_knocked_out_phone_plays_round_2_in_the_shadow_league(stack, api, new_page):
    hero = api.register(HERO, 41)
    names = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "<b>Bobby</b> Tables",
             "Edsger Dijkstra", "Barbara Liskov"]
    others = {name: api.register(name, n)["form_urls"] for n, name in enumerate(names, start=42)}
    api.start(1)
    for name in names[:3]:
        answer_over_http(others[name]["1"], 1, right=True)
    answer_over_http(hero["form_urls"]["1"], 1, right=False)
    answer_over_http(others["<b>Bobby</b> Tables"]["1"], 1, right=False)
    # 5 answered: the three right ones stay; the hero and Bobby are ranked out, two no-shows out
    api.end(1)

    projector = new_page(**PROJECTOR)
    projector.goto(f"{stack.url}/display")
    mark_page(projector)
    api.start(2)

    phone = new_page(**PHONE)
    phone.goto(hero["report_url"])
    invite = phone.locator("#shadow-invite")
    expect(invite).to_contain_text(
        "You're out of the prize, but you can still play the next rounds in the shadow league")
    invite.get_by_role("link", name="round 2").click()
    assert phone.url == hero["form_urls"]["2"]
    note = phone.locator("#shadow-note")
    expect(note).to_contain_text(
        "You're out of the prize, but you can still play this round in the shadow league")
    expect(phone.get_by_role("heading", name="Ready?")).to_be_visible()
    fits_phone(phone)
    phone.get_by_role("button", name="Start").click()
    # The live page (it says "shadow league"), not the stored form.
    expect(phone.locator("main[data-stored-form]")).to_have_count(0)
    expect(note).to_be_visible()
    tick_right_answers(phone, 2)
    fits_phone(phone)
    phone.evaluate("window.scrollTo(0, 0)")
    phone.screenshot(path=str(DOCS / "shadow-phone.png"))
    phone.get_by_role("button", name="Submit answers").click()
    expect(phone.get_by_role("heading", name="Answers in")).to_be_visible()
    expect(phone.locator("#round-state")).to_contain_text(
        "Shadow league — not ranked for the prize")
    fits_phone(phone)

    # The others knocked out play too (over HTTP); the real players answer; the projector follows
    # live.
    answer_over_http(others["<b>Bobby</b> Tables"]["2"], 2, right=True)
    answer_over_http(others["Edsger Dijkstra"]["2"], 2, right=False)
    answer_over_http(others["Ada Lovelace"]["2"], 2, right=True)
    answer_over_http(others["Grace Hopper"]["2"], 2, right=False)
    expect(projector.locator(".during .big-count")).to_have_text("2 of 3 answered", timeout=POLL)
    expect(projector.locator(".shadow-count")).to_have_text("+ 3 in the shadow league",
                                                            timeout=POLL)
    panel = projector.locator("#shadow-panel")
    # No standings while round 2 is open: they would tell who scored (counts only, above).
    expect(panel).to_have_count(0)
    stage_fits(projector)

    api.end(2)
    expect(projector.locator("ol.board")).to_be_visible(timeout=POLL)
    board = projector.locator("ol.board li:not(.cut) .name")
    expect(board).to_have_count(3)  # the real round only: Ada, Grace, and Alan who didn't answer
    assert not any("Torvalds" in name or "Tables" in name for name in board.all_inner_texts())
    expect(panel.locator("li")).to_have_count(3, timeout=POLL)
    # Names are text, never markup; the panel's first place scored the most.
    expect(panel.locator(".name").filter(has_text="Tables")).to_have_text("<b>Bobby</b> Tables")
    assert panel.locator("b").count() == 0
    scores = [int(s) for s in panel.locator(".score").all_inner_texts()]
    assert scores == sorted(scores, reverse=True) and scores[-1] == 0
    stage_fits(projector)
    assert_not_reloaded(projector)
    projector.screenshot(path=str(DOCS / "shadow-display.png"))
