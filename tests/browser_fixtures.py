"""Debian's Chromium driven by Playwright, for the browser tests and bin/screenshots.py: the
browser, fresh pages, the live stack with the demo bank, and what a page is checked for.

Chromium comes from apt (`make browser`); Playwright never downloads a browser here. Without it (and
outside CI, where it must be there) the tests marked `browser` are skipped.
"""
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from .players import KEY, Api, load_demo_bank

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium's own connections are refused on a closed
# network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True}
PROJECTOR = {"viewport": {"width": 1920, "height": 1080}}
# How long a page left open may take to show a change: a phone polls every 5 s; the projector
# gets frames over its websocket (and polls every 15 s as a fallback).
POLL = 12_000


def pytest_collection_modifyitems(items):
    """Skip the browser tests where Chromium is missing, unless in CI."""
    if CHROMIUM.exists() or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: run `make browser` (apt-get install "
                                   "chromium) for the browser tests")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the whole run (each test's pages get fresh contexts: new_page); launching
    it took a second or two for each module."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """Pages in fresh contexts (own cookies); JavaScript errors on any page fail the test."""
    contexts, errors = [], []

    def make(**options) -> Page:
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page
    yield make
    for context in contexts:
        context.close()
    assert not errors, errors


@pytest.fixture
def stack(live_stack):
    """The live stack with the demo question bank loaded."""
    load_demo_bank(live_stack)
    return live_stack


@pytest.fixture
def api(stack):
    return Api(stack.url)


def mark_page(page: Page) -> None:
    """Set a flag that only survives as long as the page is never reloaded."""
    page.evaluate("window.__notReloaded = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__notReloaded === true"), "the page was reloaded"


def fits_phone(page: Page) -> None:
    """Nothing to scroll sideways on a 390 px wide phone, however long the name (measured once the
    page's stylesheets are in: on a busy machine one came late, and an unstyled field stuck out)."""
    page.wait_for_load_state("load")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"page is {width} px wide"


def stage_fits(page: Page) -> None:
    """The projector never scrolls: the stage's content fits 1920×1080 both ways."""
    size = page.evaluate("""() => { const s = document.querySelector('#stage');
        return [s.scrollWidth, s.clientWidth, s.scrollHeight, s.clientHeight]; }""")
    detail = page.evaluate("""() => [...document.querySelectorAll(
            '#stage, #stage > *, #stage > * > *')].map(e => e.tagName + '.' + e.className + ':'
        + Math.round(e.getBoundingClientRect().top) + '+'
        + Math.round(e.getBoundingClientRect().height))""")
    assert size[0] <= size[1] and size[2] <= size[3], f"stage overflows: {size} {detail}"


def tick_right_answers(page: Page, number: int) -> None:
    """Tick round `number`'s right answers as a thumb would, each question found by its text (each
    player has their own order); a radio question ends with one choice, a checkbox one with all the
    right ones."""
    questions = page.locator("fieldset.question")
    expect(questions).to_have_count(len(KEY[number]))
    for question, correct in KEY[number].items():
        fieldset = questions.filter(has=page.locator("legend", has_text=question))
        for choice in correct:
            fieldset.locator(
                "label.choice", has_text=re.compile(rf"^\s*{re.escape(choice)}\s*$")).click()
        expect(fieldset.locator("input:checked")).to_have_count(len(correct))


def fill_join_form(page: Page, name: str, email: str, phone: str, company: str) -> None:
    """Type the join form as a person would, consent included (not submitted yet)."""
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Mobile number").fill(phone)
    page.get_by_label("Company").fill(company)
    page.get_by_label("Send me my round links").check()


def console_login(page: Page, url: str, then: str) -> None:
    """Log in to the console as the organizer of the live stack, then open `then`."""
    page.goto(f"{url}{then}")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("live-password")
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{url}{then}")
