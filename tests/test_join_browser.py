"""The join form in Chromium: a field says what to fix as the person leaves it, the submit answers
in place without a reload, and with JavaScript off it is the full page post it always was."""
import re

import pytest
from playwright.sync_api import expect

from .browser_fixtures import PHONE, assert_not_reloaded, fill_join_form, mark_page

pytestmark = [pytest.mark.browser, pytest.mark.live]


def test_a_bad_email_says_so_when_the_field_is_left(stack, new_page):
    page = new_page(**PHONE)
    page.goto(f"{stack.url}/register")
    mark_page(page)
    email = page.get_by_label("Email", exact=True)
    email.fill("ada.example.com")
    email.press("Tab")  # on to the phone: the email is checked on the server
    message = page.locator("#email-message")
    expect(message).to_have_text("An email address must have an @-sign.")
    email = page.get_by_label("Email", exact=True)  # the field's block was swapped in
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_attribute("aria-describedby", "email-message")
    expect(email).to_have_value("ada.example.com")
    # Focus stayed where the person put it: on the phone field.
    expect(page.get_by_label("Mobile number")).to_be_focused()

    # Fixed, it clears; a phone typed without +country is read back with the country it was read in.
    email.fill("ada@example.com")
    email.press("Tab")
    expect(message).to_have_count(0)
    expect(page.get_by_label("Email", exact=True)).not_to_have_attribute("aria-invalid", "true")
    phone = page.get_by_label("Mobile number")
    phone.fill("415 555 0142")
    phone.press("Tab")
    expect(page.locator("#phone-message")).to_have_text(
        "Your round links come by SMS to +1 415-555-0142 (US).")
    expect(page.get_by_label("Company")).to_be_focused()
    assert_not_reloaded(page)
    assert page.url == f"{stack.url}/register"  # nothing was submitted


def test_joining_swaps_in_the_confirmation_without_a_reload(stack, api, new_page):
    page = new_page(**PHONE)
    page.goto(f"{stack.url}/register")
    mark_page(page)
    fill_join_form(page, "Ada Lovelace", "ada@example.com", "+1 415 555 0143", "Analytical")
    page.get_by_role("button", name="Join the game").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You're in, Ada Lovelace!")
    expect(page.locator(".hero")).to_contain_text("+14155550143")
    expect(page.locator(".qr-badge svg")).to_be_visible()
    assert_not_reloaded(page)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    # The address is now the player's page: a reload (or a bookmark) shows it in full.
    assert re.fullmatch(rf"{re.escape(stack.url)}/r/[\w-]+\?welcome=1", page.url)
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("You're in, Ada Lovelace!")
    expect(page.get_by_role("heading", name="Your rounds")).to_be_visible()


def test_a_refused_submit_answers_in_place_and_keeps_what_was_typed(stack, api, new_page):
    api.register("Taken", 44)  # +14155550044
    page = new_page(**PHONE)
    page.goto(f"{stack.url}/register")
    mark_page(page)
    fill_join_form(page, "Bo", "bo@example.com", "+1 415 555 0044", "")
    page.get_by_label("Send me my round links").uncheck()
    page.get_by_role("button", name="Join the game").click()  # 422: the box
    expect(page.get_by_text("Needed: your round links come by SMS.")).to_be_visible()
    expect(page.get_by_label("Your name")).to_have_value("Bo")
    # The phone checked like any other as it was left; only the submit says it is taken (409).
    expect(page.locator("#phone-message")).to_contain_text("+1 415-555-0044 (US)")
    page.get_by_label("Send me my round links").check()
    page.get_by_role("button", name="Join the game").click()
    expect(page.locator("#phone-message")).to_have_text(
        "This phone number is already registered. Your links come by SMS; ask the help desk if "
        "they don't.")
    assert_not_reloaded(page)
    assert page.url == f"{stack.url}/register"


def test_without_javascript_it_is_a_full_page_post(stack, new_page):
    page = new_page(**PHONE, java_script_enabled=False)
    page.goto(f"{stack.url}/register")
    fill_join_form(page, "Grace Hopper", "grace.example.com", "+1 415 555 0145", "Navy")
    page.get_by_label("Email", exact=True).press("Tab")  # no JavaScript: no check
    expect(page.locator("#email-message")).to_have_count(0)
    page.get_by_role("button", name="Join the game").click()
    expect(page.locator("#email-message")).to_have_text("An email address must have an @-sign.")
    expect(page.get_by_label("Email", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Your name")).to_have_value("Grace Hopper")
    page.get_by_label("Email", exact=True).fill("grace@example.com")
    page.get_by_role("button", name="Join the game").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You're in, Grace Hopper!")
    assert re.fullmatch(rf"{re.escape(stack.url)}/r/[\w-]+\?welcome=1", page.url)
    expect(page.get_by_role("heading", name="Your rounds")).to_be_visible()
