"""The Start press in Chromium (the real stack): with JavaScript, htmx posts the Start form and the
answer, the questions page itself, takes the place of the page's main: one request, no reload, the
address kept, the focus on the player's time. Without JavaScript, the plain post and its 303. A
refused press shows the page saying why."""
import pytest
from playwright.sync_api import expect

from .browser_fixtures import PHONE, assert_not_reloaded, mark_page, tick_right_answers

pytestmark = [pytest.mark.browser, pytest.mark.live]


def requests_to(page, code: str) -> list[str]:
    """Every request the page makes to this link's addresses, as 'METHOD path', from now on."""
    seen = []
    page.on("request", lambda request: seen.append(
        f"{request.method} {request.url.split('://', 1)[1].split('/', 1)[1]}")
        if f"/f/{code}" in request.url else None)
    return seen


def test_start_with_htmx_is_one_request_and_keeps_the_page(stack, api, new_page):
    link = api.register("Hana Tyx", 21)["form_urls"]["1"]
    code = link.rsplit("/", 1)[1]
    api.start(1)
    page = new_page(**PHONE)
    page.goto(link)
    expect(page.get_by_role("heading", name="Ready?")).to_be_visible()
    mark_page(page)
    seen = requests_to(page, code)
    page.get_by_role("button", name="Start").click()

    expect(page.locator('main[data-stored-form="forms"]')).to_have_count(1)
    expect(page.locator(".timer")).to_be_focused()
    assert seen == [f"POST f/{code}/start"]
    assert_not_reloaded(page)
    assert page.url == link
    assert page.locator("main").count() == 1
    # the timer counts down in the swapped-in page, and a reload shows the same questions
    first = page.locator(".timer [data-countdown]").inner_text()
    page.wait_for_timeout(2100)
    assert page.locator(".timer [data-countdown]").inner_text() != first
    tick_right_answers(page, 1)
    page.reload()
    expect(page.locator('main[data-stored-form="forms"]')).to_have_count(1)
    tick_right_answers(page, 1)
    page.get_by_role("button", name="Submit answers").click()
    expect(page.get_by_role("heading", name="Answers in")).to_be_visible()


def test_without_javascript_start_posts_and_follows_the_303(stack, api, new_page):
    link = api.register("Ned Oscript", 22)["form_urls"]["1"]
    code = link.rsplit("/", 1)[1]
    api.start(1)
    page = new_page(**PHONE, java_script_enabled=False)
    page.goto(link)
    seen = requests_to(page, code)
    page.get_by_role("button", name="Start").click()
    expect(page.locator('main[data-stored-form="forms"]')).to_have_count(1)
    assert seen == [f"POST f/{code}/start", f"GET f/{code}"]
    assert page.url == link


def test_a_refused_press_shows_why_in_place(stack, api, new_page):
    link = api.register("Lay Tecomer", 23)["form_urls"]["1"]
    api.start(1)
    page = new_page(**PHONE)
    page.goto(link)
    expect(page.get_by_role("heading", name="Ready?")).to_be_visible()
    api.end(1)  # the round closes while the phone shows Start
    page.get_by_role("button", name="Start").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Round 1 is closed")
    expect(alert).to_be_focused()
    expect(page.get_by_role("heading", name="Round closed")).to_be_visible()
    assert page.locator("main").count() == 1
