"""A console click that lands before htmx ran (a slow venue network holds the script back) still
asks first: the server answers the confirmation page, and only its Yes acts. Debian's Chromium
driven by Playwright, against the real stack."""
import contextlib

import pytest
import requests
from playwright.sync_api import Error, expect

from .a11y import audit
from .browser_fixtures import console_login
from .helpers import SMALL_BANK

pytestmark = [pytest.mark.browser, pytest.mark.live]

HTMX = "**/static/vendor/htmx-2.0.11.min.js"


def hold_htmx(page) -> list:
    """htmx's script never arrives until let go (its requests are held, not refused)."""
    held = []
    page.route(HTMX, lambda route: held.append(route))
    return held


def let_htmx_go(page, held: list) -> None:
    page.unroute(HTMX)
    for route in held:
        with contextlib.suppress(Error):  # a page left since: its request is gone
            route.continue_()


def round_status(stack, api, number: int) -> str:
    board = requests.get(f"{stack.url}/api/leaderboard/{number}", headers=api.headers)
    return board.json()["status"]


def asked_before_htmx(page, url: str, button: str):
    """Open `url` with htmx held back and click `button`: the confirmation page asks. Returns the
    hold, for let_htmx_go."""
    held = hold_htmx(page)
    page.goto(url, wait_until="commit")
    page.get_by_role("button", name=button).click()
    expect(page.get_by_role("heading", name="Are you sure?")).to_be_visible()
    return held


def test_a_click_before_htmx_gets_the_confirmation_page(stack, api, new_page):
    api.register("Walter Skinner", 11)
    api.register("Dana Scully", 12)
    page = new_page(viewport={"width": 1440, "height": 900})
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    console_login(page, stack.url, "/admin/")

    # Start round 1, clicked while htmx is still on its way: asked on a page; Cancel goes back.
    held = asked_before_htmx(page, f"{stack.url}/admin/", "Start round 1")
    expect(page.locator("#question")).to_have_text(
        "Start round 1 and text 2 players their links?")
    page.get_by_role("link", name="Cancel").click()
    expect(page).to_have_url(f"{stack.url}/admin/")
    let_htmx_go(page, held)
    assert round_status(stack, api, 1) == "draft"

    # End round 1, the same: the page counts the players who haven't pressed Start now.
    api.start(1)
    held = asked_before_htmx(page, f"{stack.url}/admin/", "End round 1")
    expect(page.locator("#question")).to_contain_text(
        "End round 1 now? 2 invited players haven't pressed Start yet")
    let_htmx_go(page, held)
    page.wait_for_load_state("load")
    page.screenshot(path="/tmp/console-confirm.png", full_page=True)
    audit(page, "the console's confirmation page")
    assert round_status(stack, api, 1) == "open"
    assert dialogs == []  # htmx never asked: the click came first

    page.get_by_role("button", name="Yes, end round 1").click()
    expect(page.locator(".flash-ok")).to_have_text("Round 1 is closed and eliminations are done.")
    row = page.locator("tr", has=page.get_by_role("cell", name="Cloud basics", exact=True))
    expect(row.locator(".badge").first).to_have_text("closed")
    assert round_status(stack, api, 1) == "closed"
    assert dialogs == []


def test_a_pasted_bank_loaded_before_htmx_comes_through_the_page_whole(stack, api, new_page):
    """The bank's text rides in a hidden field: its lines arrive as they were typed."""
    page = new_page(viewport={"width": 1440, "height": 900})
    console_login(page, stack.url, "/admin/")
    held = hold_htmx(page)
    page.goto(f"{stack.url}/admin/", wait_until="commit")
    page.get_by_text("Load questions").click()
    page.get_by_label("…or paste it").fill(SMALL_BANK)
    page.get_by_role("button", name="Load", exact=True).click()
    expect(page.locator("#question")).to_have_text(
        "Load this question bank? Rounds not started yet are replaced by what the file says.")
    let_htmx_go(page, held)
    page.get_by_role("button", name="Yes, load it").click()
    expect(page.locator(".flash-ok")).to_contain_text("Question bank loaded")
    for title in ("Warm-up", "Second"):  # the demo's rounds replaced by the pasted ones
        expect(page.get_by_role("cell", name=title, exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="Cloud basics", exact=True)).to_have_count(0)
