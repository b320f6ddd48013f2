"""The console's Messages and Emails pages switch language in place (htmx, the real stack and
Chromium), and a language's version is edited there."""
from playwright.sync_api import expect

from .browser_fixtures import assert_not_reloaded, console_login, mark_page


def test_the_wording_switches_language_in_place_and_saves_that_languages_version(stack,
                                                                                  new_page):
    page = new_page()
    console_login(page, stack.url, "/admin/messages")
    round_link = page.locator("#sms-round_link textarea")
    expect(round_link).to_contain_text("Your personal link: {link}")
    mark_page(page)
    page.locator("#wording nav").get_by_role("link", name="Español").click()
    expect(round_link).to_contain_text("Tu enlace personal: {link}")
    expect(page.locator("#wording nav [aria-current=page]")).to_have_text("Español")
    assert page.url.endswith("/admin/messages?language=es")
    assert_not_reloaded(page)
    round_link.fill("¡Ronda {number}!  {link}")
    page.locator("#sms-round_link").get_by_role("button", name="Save").click()
    expect(page.locator(".flash-ok")).to_contain_text("players in Español use this wording")
    expect(page.locator("#sms-round_link .badge")).to_have_text("edited")
    page.locator("#wording nav").get_by_role("link", name="English").click()
    expect(round_link).to_contain_text("Your personal link: {link}")

    page.goto(f"{stack.url}/admin/emails")
    mark_page(page)
    page.locator("#wording nav").get_by_role("link", name="Deutsch").click()
    expect(page.locator("#email-confirmation input[name=subject]")).to_have_value(
        "{{ event }}: Du bist dabei, {{ name }}")
    assert_not_reloaded(page)
