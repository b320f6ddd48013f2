"""The pages in a real browser: Debian's Chromium driven by Playwright, against the real stack.

A phone joins and plays a round, a phone left open moves on by itself, the organizer runs a
round from the console, and the projector follows a whole event without ever being reloaded.
Chromium comes from apt (`make browser`); Playwright never downloads a browser here.
"""
import re

import pytest
import requests
from playwright.sync_api import expect

from .browser_fixtures import (PHONE, POLL, PROJECTOR, assert_not_reloaded, fill_join_form,
                               fits_phone, mark_page, stage_fits, tick_right_answers)
from .players import answer_over_http

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_phone_registers_and_plays_a_round(stack, api, new_page):
    name = "Dana Scully-Wolfeschlegelsteinhausenbergerdorff"
    page = new_page(**PHONE)
    page.goto(f"{stack.url}/register")
    fill_join_form(page, name, "dana@example.com", "+1 415 555 0142", "FBI")
    page.get_by_role("button", name="Join the game").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"You're in, {name}!")
    expect(page.locator(".hero")).to_contain_text("+14155550142")
    fits_phone(page)
    # The QR code of the personal page is whole: scaled into its box, not cropped.
    qr = page.locator(".qr-badge svg")
    assert qr.get_attribute("viewBox"), "the QR code cannot scale: no viewBox"
    assert qr.bounding_box()["width"] == pytest.approx(220, abs=1)

    api.start(1)
    link = api.sms_link("+14155550142", 1)
    # The report page links to the same round page as the SMS.
    page.reload()
    assert page.get_by_role("link", name="1. Cloud basics").get_attribute("href") == link
    page.get_by_role("link", name="1. Cloud basics").click()
    expect(page.get_by_role("heading", name="Ready?")).to_be_visible()
    expect(page.get_by_text("Playing as")).to_contain_text(name)
    fits_phone(page)
    page.get_by_role("button", name="Start").click()

    # The questions are the player's stored form (made by the worker), served under the CSP, styled
    # and counting down.
    expect(page.locator('main[data-stored-form="forms"]')).to_have_count(1)
    expect(page.locator(".timer")).to_be_visible()
    assert page.evaluate(
        "getComputedStyle(document.querySelector('.button.primary')).borderRadius") != "0px"
    tick_right_answers(page, 1)
    fits_phone(page)
    page.get_by_role("button", name="Submit answers").click()
    expect(page.get_by_role("heading", name="Answers in")).to_be_visible()
    assert page.url == link

    api.end(1)
    page.reload()
    expect(page.locator(".through")).to_have_text(
        "You're through, ranked 1! Your next link comes by SMS.")


def test_phone_left_open_moves_on_when_the_round_opens(stack, api, new_page):
    links = api.register("Fox Mulder", 7)["form_urls"]
    page = new_page(**PHONE)
    page.goto(links["1"])
    expect(page.get_by_role("heading", name="Not started yet")).to_be_visible()
    mark_page(page)
    api.start(1)
    expect(page.get_by_role("heading", name="Ready?")).to_be_visible(timeout=POLL)
    assert_not_reloaded(page)
    # The swapped-in state works: Start leads to the questions.
    page.get_by_role("button", name="Start").click()
    expect(page.get_by_role("button", name="Submit answers")).to_be_visible()


def test_admin_logs_in_and_runs_a_round(stack, api, new_page):
    api.register("Walter Skinner", 11)
    page = new_page(viewport={"width": 1440, "height": 900})
    dialogs = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()
    page.on("dialog", accept)
    page.goto(f"{stack.url}/admin")
    expect(page).to_have_url(re.compile(r"/admin/login"))
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("live-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Console")).to_be_visible()

    row = page.locator("tr", has=page.get_by_role("cell", name="Cloud basics", exact=True))
    expect(row.locator(".badge").first).to_have_text("draft")
    # the console's scripts run (deferred) before the organizer's click: the confirm is theirs (a
    # click before them gets the server's page instead: tests/test_console_confirm_browser.py)
    page.wait_for_load_state("load")
    page.get_by_role("button", name="Start round 1").click()
    expect(row.locator(".badge").first).to_have_text("open")
    expect(page.locator(".flash-ok")).to_have_text("Round 1 is open. Links are going out.")
    assert dialogs == ["Start round 1 and text 1 players their links?"]
    status = requests.get(f"{stack.url}/api/admin/sms-progress/1", headers=api.headers).json()
    assert status["status"] != "not_started", status

    page.get_by_role("button", name="End round 1").click()
    expect(row.locator(".badge").first).to_have_text("closed")
    expect(page.locator(".flash-ok")).to_have_text("Round 1 is closed and eliminations are done.")
    assert len(dialogs) == 2 and dialogs[1].startswith("End round 1 now?")
    # The one player never answered, so the console shows no one left in the game.
    expect(page.locator(".stat-card", has_text="still in").locator("strong")).to_have_text("0")


def box_of(locator) -> dict:
    """The element's box; live frames replace the stage now and then, so it is read again if it was
    mid-swap."""
    for _ in range(20):
        expect(locator).to_be_visible()
        if (box := locator.bounding_box()) is not None:
            return box
    raise AssertionError("the element kept disappearing")


def test_projector_follows_the_whole_event_without_reloading(stack, api, new_page):
    long_name = "Maximiliana Alexandrova-Featherstonehaugh of Llanfairpwllgwyngyll"
    # Three who play, and seven who never open their links: the board after round 1 is full.
    names = (["Ada Lovelace", "<b>Bobby</b> Tables", long_name]
             + [f"No-show {n}" for n in range(1, 8)])
    links = [api.register(name, n)["form_urls"] for n, name in enumerate(names, start=21)]
    page = new_page(**PROJECTOR)
    page.goto(f"{stack.url}/display")
    mark_page(page)
    expect(page.locator("#player-count")).to_have_text("10")
    expect(page.get_by_text("Scan to play")).to_be_visible()
    qr = box_of(page.locator(".qr svg"))
    assert qr["width"] >= 600 and qr["height"] >= 600, f"the join QR code is small: {qr}"
    api.register("Grace Hopper", 99)  # joins while the projector shows the QR
    expect(page.locator("#player-count")).to_have_text("11", timeout=POLL)
    stage_fits(page)

    api.start(1)
    answered = page.locator(".during .big-count")
    expect(answered).to_have_text("0 of 11 answered", timeout=POLL)
    answer_over_http(links[0]["1"], 1, right=True)
    answer_over_http(links[1]["1"], 1, right=True)
    answer_over_http(links[2]["1"], 1, right=False)
    expect(answered).to_have_text("3 of 11 answered", timeout=POLL)
    stage_fits(page)

    api.end(1)
    board = page.locator("ol.board")
    expect(board).to_be_visible(timeout=POLL)
    expect(board.locator("li.in")).to_have_count(2)
    expect(board.locator("li.out")).to_have_count(8)  # the board shows ten rows at most
    expect(board.locator("li.cut")).to_have_count(1)
    # Names are text, never markup: Bobby's tags show as typed.
    expect(board.locator("li.in .name").filter(has_text="Tables")).to_have_text(
        "<b>Bobby</b> Tables")
    assert board.locator("b").count() == 0
    expect(page.get_by_text("Next: round 2")).to_be_visible()
    stage_fits(page)

    api.start(2)
    answer_over_http(links[0]["2"], 2, right=True)
    expect(answered).to_have_text("1 of 2 answered", timeout=POLL)
    answer_over_http(links[1]["2"], 2, right=False)
    api.end(2)  # (both players still in have answered: the round may have closed itself first)
    expect(page.get_by_role("heading", name="Round 2")).to_be_visible(timeout=POLL)
    expect(board.locator("li.in .name")).to_have_text(["Ada Lovelace"])

    api.start(3)
    answer_over_http(links[0]["3"], 3, right=True)
    api.end(3)
    expect(page.get_by_role("heading", level=1)).to_have_text("🏆 Ada Lovelace wins!",
                                                              timeout=POLL)
    expect(page.locator(".step-1 .name")).to_have_text("Ada Lovelace")
    stage_fits(page)
    assert_not_reloaded(page)
