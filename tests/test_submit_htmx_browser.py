"""The submit in Chromium (the real stack): with JavaScript, htmx posts the questions form (the
stored form's, as a phone gets it after Start) and the answer, the player's "Answers in ✔" page,
takes the place of the page's main: one request, no reload, the address kept, the focus on the
heading. A reload shows the same page. A submit after the round closed shows why, in place."""
import pytest
from playwright.sync_api import expect

from .browser_fixtures import PHONE, assert_not_reloaded, mark_page, tick_right_answers
from .test_start_htmx_browser import requests_to

pytestmark = [pytest.mark.browser, pytest.mark.live]


def questions_of(api, new_page, name: str, phone: int):
    """A phone on its stored form after pressing Start: the page, its link and its code."""
    link = api.register(name, phone)["form_urls"]["1"]
    api.start(1)
    page = new_page(**PHONE)
    page.goto(link)
    page.get_by_role("button", name="Start").click()
    expect(page.locator('main[data-stored-form="forms"]')).to_have_count(1)
    return page, link, link.rsplit("/", 1)[1]


def test_a_submit_with_htmx_is_one_request_and_keeps_the_page(stack, api, new_page):
    page, link, code = questions_of(api, new_page, "Sub Mittin", 31)
    tick_right_answers(page, 1)
    mark_page(page)
    seen = requests_to(page, code)
    page.get_by_role("button", name="Submit answers").click()

    heading = page.get_by_role("heading", name="Answers in")
    expect(heading).to_be_visible()
    expect(heading).to_be_focused()
    assert seen == [f"POST f/{code}/submit"]
    assert_not_reloaded(page)
    assert page.url == link and page.locator("main").count() == 1
    assert page.locator('main[data-stored-form]').count() == 0  # the player's page, not the form
    page.reload()
    expect(page.get_by_role("heading", name="Answers in")).to_be_visible()
    assert page.url == link


def test_a_submit_after_the_round_closed_shows_why_in_place(stack, api, new_page):
    page, link, _ = questions_of(api, new_page, "Lay Tanswer", 32)
    tick_right_answers(page, 1)
    mark_page(page)
    api.end(1)  # the round closes while the phone shows its questions
    page.get_by_role("button", name="Submit answers").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Round 1 is closed")
    expect(alert).to_be_focused()
    expect(page.get_by_role("heading", name="Round closed")).to_be_visible()
    assert_not_reloaded(page)
    assert page.url == link and page.locator("main").count() == 1
