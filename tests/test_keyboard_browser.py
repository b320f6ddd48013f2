"""A player who uses only a keyboard (Chromium, the real stack): joins, opens their round link,
waits for the round, presses Start, answers every question, submits and reads their report — with
Tab, Shift+Tab, Space, Enter and the arrow keys alone (no click, no `fill`). What they act on
always shows a visible focus ring, and no htmx swap drops their focus onto the page's body."""
import pytest
from playwright.sync_api import Page, expect

from .browser_fixtures import PHONE, POLL
from .players import KEY

pytestmark = [pytest.mark.browser, pytest.mark.live]

# What has the keyboard's focus: enough to act on it and to say where it is.
FOCUSED = """() => { const e = document.activeElement; const f = e.closest('fieldset');
    const label = e.closest('label') || (e.labels && e.labels[0]);
    return {tag: e.tagName, type: e.type || '', id: e.id, checked: !!e.checked,
            text: ((label || e).innerText || '').trim(),
            legend: f ? f.querySelector('legend').innerText : ''}; }"""
# A focus ring a person can see: a solid outline at least 2 px wide, or a box shadow.
RING = """() => { const s = getComputedStyle(document.activeElement);
    const outline = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2
        && !/rgba\\(.*,\\s*0\\)/.test(s.outlineColor);
    return outline || s.boxShadow !== 'none'; }"""


def focused(page: Page) -> dict:
    return page.evaluate(FOCUSED)


def ring_shows(page: Page) -> None:
    """The focused element shows a visible focus indicator."""
    assert page.evaluate(RING), f"no visible focus on {focused(page)}"


def tab_to(page: Page, matches, key: str = "Tab", presses: int = 30) -> dict:
    """Press Tab (or Shift+Tab) until the focus is on what `matches`; it must get there."""
    seen = []
    for _ in range(presses):
        page.keyboard.press(key)
        now = focused(page)
        if matches(now):
            ring_shows(page)
            return now
        seen.append(now)
    raise AssertionError(f"{key} never reached it; went through {seen}")


def is_field(field_id: str):
    return lambda f: f["id"] == field_id


def is_button(name: str):
    return lambda f: f["tag"] in ("BUTTON", "A") and f["text"].startswith(name)


def not_lost(page: Page) -> None:
    """After a swap, the focus is somewhere (never the page's body)."""
    assert page.evaluate("document.activeElement && document.activeElement !== document.body"), \
        "the focus was lost to the page's body"


def answer_question(page: Page, right: set[str]) -> None:
    """Focus is on a question's first choice: pick the right ones. Radios: Space, then arrows;
    checkboxes: Space on each right one, Tab through."""
    first = focused(page)
    if first["type"] == "radio":
        page.keyboard.press("Space")
        for _ in range(8):
            if focused(page)["text"] in right:
                break
            page.keyboard.press("ArrowDown")
        now = focused(page)
        assert now["checked"] and now["text"] in right, now
        return
    legend = first["legend"]
    while True:
        now = focused(page)
        if now["legend"] != legend:
            raise AssertionError(f"left the question at {now}")
        if now["text"] in right:
            page.keyboard.press("Space")
            assert focused(page)["checked"], now
        checkboxes = page.evaluate("() => [...document.activeElement.closest('fieldset')"
                                   ".querySelectorAll('input')].map(i => i.value)")
        if page.evaluate("v => document.activeElement.value === v[v.length - 1]", checkboxes):
            return
        page.keyboard.press("Tab")


def test_a_keyboard_only_player_plays_a_round(stack, api, new_page):
    page = new_page(**PHONE)
    page.goto(f"{stack.url}/register")
    # The join form, field by field: each field is checked as it is left (an htmx swap of that
    # field only), and the focus stays on the next one.
    for field_id, typed in [("name-input", "Kay Board"), ("email-input", "kay@example.com"),
                            ("phone-input", "+1 415 555 0177"), ("company-input", "Acme")]:
        tab_to(page, is_field(field_id))
        page.keyboard.type(typed)
    consent = tab_to(page, lambda f: f["type"] == "checkbox")
    assert consent["text"].startswith("Send me my round links")
    page.keyboard.press("Space")
    assert focused(page)["checked"]
    tab_to(page, is_button("Join the game"))
    # Shift+Tab goes back (the sponsors' box, left unticked), Tab forward again
    back = tab_to(page, lambda f: f["type"] == "checkbox", key="Shift+Tab", presses=1)
    assert back["text"].startswith("The event's sponsors") and not back["checked"]
    tab_to(page, is_button("Join the game"), presses=1)
    expect(page.locator("#field-phone .hint.checked")).to_contain_text("+1 415-555-0177")
    page.keyboard.press("Enter")

    # The confirmation is swapped in for the form: its heading has the focus.
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("You're in, Kay Board!")
    expect(heading).to_be_focused()
    not_lost(page)
    tab_to(page, is_button("Your page"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your rounds")).to_be_visible()
    tab_to(page, is_button("1. Cloud basics"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Not started yet")).to_be_visible()

    # The round opens while the page waits: the Ready state is swapped in, its Start focused.
    api.start(1)
    start = page.get_by_role("button", name="Start")
    expect(start).to_be_visible(timeout=POLL)
    expect(start).to_be_focused()
    ring_shows(page)
    page.keyboard.press("Space")

    # The questions (the stored form): each answered from the keyboard, then submitted.
    expect(page.locator('main[data-stored-form="forms"]')).to_have_count(1)
    # The focus goes to the player's time once the swap has settled (static/js/in_place.js): wait
    # for it, or a Tab pressed before the settle has its focus moved away mid-question.
    expect(page.locator("main .timer")).to_be_focused()
    not_lost(page)
    answered = set()
    while len(answered) < len(KEY[1]):
        now = tab_to(page, lambda f: f["tag"] == "INPUT" and f["legend"] != "")
        text = next(t for t in KEY[1] if t in now["legend"])
        assert text not in answered, f"Tab came back to {text}"
        answer_question(page, KEY[1][text])
        answered.add(text)
    for fieldset in page.locator("fieldset.question").all():
        text = next(t for t in KEY[1] if t in fieldset.locator("legend").inner_text())
        checked = fieldset.locator("input:checked").evaluate_all(
            "inputs => inputs.map(i => i.closest('label').innerText.trim())")
        assert set(checked) == KEY[1][text], (text, checked)
    tab_to(page, is_button("Submit answers"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Answers in")).to_be_visible()

    # Their report, reached from the round page.
    api.end(1)
    tab_to(page, is_button("Your results"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Kay Board")
    expect(page.get_by_role("heading", name="Your rounds")).to_be_visible()
    expect(page.locator(".round-row[data-round='1']")).to_contain_text("1. Cloud basics")
