"""A question with a picture on a real phone (Chromium, 390 × 844) against the real stack: the
demo bank's first question shows its picture, sized before it loads, within the phone's width and
data budget, served with a year's cache."""
import pytest
import requests
from playwright.sync_api import expect

from quiz.bank_images import PHONE_BUDGET

from .browser_fixtures import PHONE, fits_phone

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_a_phone_shows_the_question_picture(stack, api, new_page):
    api.register("Ada Lovelace", 77)
    api.start(1)
    page = new_page(**PHONE)
    page.goto(api.sms_link("+14155550077", 1))
    page.get_by_role("button", name="Start").click()
    expect(page.locator('main[data-stored-form="forms"]')).to_have_count(1)
    question = page.locator("fieldset.question").filter(
        has=page.locator("legend", has_text="Which service stores objects?"))
    picture = question.get_by_role("img", name="A bucket full of coloured boxes under a cloud")
    picture.scroll_into_view_if_needed()
    expect(picture).to_be_visible()
    assert picture.get_attribute("width") == "800" and picture.get_attribute("height") == "450"
    # Decoded (the stored form's CSP lets it in), and scaled to the phone's width, aspect kept.
    page.wait_for_function("img => img.complete", arg=picture.element_handle())
    src = picture.evaluate("img => img.src")
    assert picture.evaluate("img => img.naturalWidth") == 800, (src, requests.get(src).status_code)
    box = picture.bounding_box()
    assert box["width"] <= 390 and box["height"] == pytest.approx(box["width"] * 450 / 800, abs=1)
    fits_phone(page)
    # Only the picture's question has one.
    expect(page.locator("img.question-image")).to_have_count(1)

    response = requests.get(picture.evaluate("img => img.src"), timeout=10)
    assert response.status_code == 200 and response.headers["Content-Type"] == "image/webp"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["ETag"] and len(response.content) <= PHONE_BUDGET
