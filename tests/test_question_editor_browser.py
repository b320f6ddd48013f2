"""The question editor in Chromium (the real stack, the demo bank): a question moved down and a bad
edit refused, each swapped in by htmx without a reload; the screenshot in docs/."""
from pathlib import Path

from playwright.sync_api import expect

from .browser_fixtures import assert_not_reloaded, console_login, mark_page

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_move_a_question_and_see_a_bad_edit_refused(stack, new_page):
    page = new_page(viewport={"width": 1366, "height": 900})
    console_login(page, stack.url, "/admin/questions/")
    expect(page.get_by_role("heading", name="Questions")).to_be_visible()
    mark_page(page)
    first = page.locator("#q-1-1 input[name=text]")
    expect(first).to_have_value("Which service stores objects?")

    page.get_by_role("button", name="Move question 1 down").first.click()
    expect(page.locator("#bank .flash-ok")).to_have_text("Round 1 question 1 moved down.")
    expect(first).to_have_value("Which of these is a message queue?")
    expect(page.locator("#q-1-2 input[name=text]")).to_have_value("Which service stores objects?")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(DOCS / "admin-questions.png"))

    question = page.locator("#q-2-1")
    question.locator("textarea[name=answer]").fill("200")
    question.get_by_role("button", name="Save question 1").click()
    expect(page.locator("#q-2-1 [role=alert]")).to_have_text(
        "Round 2 question 1 answer '200' is not one of its choices.")
    expect(page.locator("#q-2-1 textarea[name=answer]")).to_have_value("200")  # as typed
    assert_not_reloaded(page)
