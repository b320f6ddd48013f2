#!/usr/bin/env python3
"""Screenshots for docs/: start the real stack, play a small 12-player event, save every page as
PNG.

    .venv/bin/python bin/screenshots.py [OUT_DIR]      (default: docs/)

Needs Debian's Chromium (`make browser`). Everything runs on loopback in a temporary directory:
a real redis-server, gunicorn and the worker, the demo question bank. One phone plays the whole
event in the browser; the others answer over HTTP; the projector page is never reloaded.
"""
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    sys.exit(f"{CHROMIUM} is missing: run `make browser` first.")

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from quiz.embedded import server_args, wait_for  # noqa: E402
from tests.browser_fixtures import (CHROMIUM_ARGS, PHONE, PROJECTOR, fill_join_form,  # noqa: E402
                                    fits_phone, stage_fits, tick_right_answers)
from tests.live_fixtures import LiveStack  # noqa: E402
from tests.players import Api, answer_over_http, load_demo_bank  # noqa: E402

POLL = 12_000
# The phone in the pictures: a long name, to show it never overflows.
HERO = "Hubert Blaine Wolfeschlegelsteinhausenbergerdorff"
# (name, how they answer rounds 1, 2, 3: right, wrong, right after thinking N s,
# or None for not at all).
# The hero plays in the browser and wins; everyone else answers over HTTP.
PLAYERS = [
    ("Grace Hopper", (True, True, 3.0)),  # right, after thinking 3 s
    ("Katherine Johnson", (True, True, False)),
    ("Alan Turing", (True, False, None)),
    ("Margaret Hamilton", (True, False, None)),
    ("<b>Bobby</b> Tables", (False, None, None)),
    ("Linus Torvalds", (False, None, None)),
    ("Barbara Liskov", (False, None, None)),
    ("Tim Berners-Lee", (False, None, None)),
    ("Radia Perlman", (None, None, None)),
    ("Ken Thompson", (None, None, None)),  # these three never open their links
    ("Frances Allen", (None, None, None)),
]


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="knockout-shots-") as tmp:
        tmp = Path(tmp)
        (tmp / "redis").mkdir()
        sock = tmp / "redis" / "redis.sock"
        redis = subprocess.Popen(server_args(tmp / "redis", sock), stdout=subprocess.DEVNULL)
        stack = None
        try:
            wait_for(f"unix://{sock}")
            # Rounds are final (and their answers revealed) 8 s after their close, not 60.
            stack = LiveStack(tmp, f"unix://{sock}", RESULTS_DELAY_SECONDS="8").start()
            load_demo_bank(stack)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                     args=CHROMIUM_ARGS)
                try:
                    play(browser, stack, Api(stack.url), out)
                finally:
                    browser.close()
        finally:
            if stack:
                stack.stop()
            redis.terminate()
            redis.wait(timeout=10)
    for png in sorted(out.glob("*.png")):
        print(png.relative_to(ROOT) if png.is_relative_to(ROOT) else png)


def play(browser, stack, api: Api, out: Path) -> None:
    def context(**options):
        ctx = browser.new_context(**options)
        ctx.set_default_timeout(15_000)
        return ctx

    links = {name: api.register(name, n)["form_urls"]
             for n, (name, _) in enumerate(PLAYERS, start=1)}
    plans = dict(PLAYERS)

    # The projector: opened once, never reloaded.
    display = context(**PROJECTOR).new_page()
    display.goto(f"{stack.url}/display")

    # The hero joins on a phone.
    phone = context(**PHONE).new_page()
    phone.goto(f"{stack.url}/register")
    fill_join_form(phone, HERO, "hubert@example.com", "+1 415 555 0199",
                   "Wolfeschlegelstein Logistics GmbH")
    settle(phone)
    phone.screenshot(path=out / "phone-register.png", full_page=True, scale="css")
    phone.get_by_role("button", name="Join the game").click()
    expect(phone.get_by_role("heading", level=1)).to_contain_text("You're in")
    settle(phone)
    phone.screenshot(path=out / "phone-joined.png", full_page=True, scale="css")

    expect(display.locator("#player-count")).to_have_text(str(len(PLAYERS) + 1), timeout=POLL)
    settle(display)
    display.screenshot(path=out / "display-before.png", scale="css")

    # The organizer starts round 1 from the console.
    admin = context(viewport={"width": 1440, "height": 900}).new_page()
    admin.on("dialog", lambda dialog: dialog.accept())
    admin.goto(f"{stack.url}/admin")
    admin.get_by_label("Password").fill("live-password")
    admin.get_by_role("button", name="Log in").click()
    # once the console's scripts ran: a click before htmx gets the confirmation page instead
    admin.wait_for_load_state("load")
    admin.get_by_role("button", name="Start round 1").click()
    expect(admin.locator(".flash-ok")).to_be_visible()

    hero_links = {1: api.sms_link("+14155550199", 1)}
    phone.goto(hero_links[1])
    expect(phone.get_by_role("heading", name="Ready?")).to_be_visible()
    settle(phone)
    phone.screenshot(path=out / "phone-ready.png", full_page=True, scale="css")
    phone.get_by_role("button", name="Start").click()
    # the stored form, served by Knockout
    expect(phone.locator('main[data-stored-form="forms"]')).to_have_count(1)
    shoot_picture_question(phone, out / "phone-image-question.png")
    answer_in_browser(phone, 1, shoot=out / "phone-questions.png")
    expect(phone.get_by_role("heading", name="Answers in")).to_be_visible()
    settle(phone)
    phone.screenshot(path=out / "phone-submitted.png", full_page=True, scale="css")

    for number in (1, 2, 3):
        if number > 1:
            api.start(number)
            hero_links[number] = api.sms_link("+14155550199", number)
            phone.goto(hero_links[number])
            phone.get_by_role("button", name="Start").click()
            answer_in_browser(phone, number)
        for name, plan in plans.items():
            if plan[number - 1] is not None:
                answer = plan[number - 1]
                answer_over_http(links[name][str(number)], number, right=bool(answer),
                                 think=answer if type(answer) is float else 0)
        if number == 1:
            answers = 1 + sum(1 for plan in plans.values() if plan[0] is not None)
            expect(display.locator(".during .big-count")).to_have_text(
                f"{answers} of {len(PLAYERS) + 1} answered", timeout=POLL)
            settle(display)
            display.screenshot(path=out / "display-during.png", scale="css")
        if number == 2:
            admin.reload()
            settle(admin)
            admin.screenshot(path=out / "admin-console.png", scale="css")
            admin.goto(f"{stack.url}/admin/forms/")
            expect(admin.get_by_text("in sync").first).to_be_visible()
            settle(admin)
            admin.screenshot(path=out / "admin-forms.png", scale="css")
            admin.goto(f"{stack.url}/admin/staff")
            expect(admin.get_by_role("heading", name="Staff accounts")).to_be_visible()
            settle(admin)
            admin.screenshot(path=out / "admin-staff.png", scale="css")
            admin.goto(f"{stack.url}/admin")
        api.end(number)
        if number == 1:
            expect(display.locator("ol.board")).to_be_visible(timeout=POLL)
            settle(display)
            display.screenshot(path=out / "display-after.png", scale="css")
            bobby = context(**PHONE).new_page()
            bobby.goto(links["<b>Bobby</b> Tables"]["1"])
            expect(bobby.locator(".out")).to_be_visible()
            settle(bobby)
            bobby.screenshot(path=out / "phone-out.png", full_page=True, scale="css")
            # Final 8 s after the close: the projector reveals the round's first question.
            expect(display.locator(".reveal")).to_be_visible(timeout=20_000)
            settle(display)
            stage_fits(display)
            display.screenshot(path=out / "display-reveal.png", scale="css")
    expect(display.get_by_text("wins!")).to_be_visible(timeout=POLL)
    settle(display)
    display.screenshot(path=out / "display-podium.png", scale="css")
    phone.goto(hero_links[3])
    expect(phone.locator(".through")).to_be_visible()
    settle(phone)
    phone.screenshot(path=out / "phone-winner.png", full_page=True, scale="css")
    phone.get_by_role("link", name="Your results").click()
    expect(phone.get_by_role("heading", name="Your rounds")).to_be_visible()
    settle(phone)
    phone.screenshot(path=out / "phone-report.png", full_page=True, scale="css")


def answer_in_browser(page, number: int, shoot: Path | None = None) -> None:
    """Tick the right answers like a thumb would, then submit."""
    tick_right_answers(page, number)
    if shoot:
        page.evaluate("window.scrollTo(0, 0)")
        settle(page)
        page.screenshot(path=shoot, full_page=True, scale="css")
    page.get_by_role("button", name="Submit answers").click()
    expect(page.get_by_role("heading", name="Answers in")).to_be_visible()


def shoot_picture_question(page, path: Path) -> None:
    """The phone's screen with the round's picture question at its top (its place in the player's
    order is their own)."""
    picture = page.locator("img.question-image").first
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=picture.element_handle())
    # below the sticky countdown
    page.locator("fieldset.question", has=picture).evaluate(
        "f => window.scrollTo(0, f.getBoundingClientRect().top + window.scrollY - 72)")
    settle(page)
    page.screenshot(path=path, scale="css")
    page.evaluate("window.scrollTo(0, 0)")


def settle(page) -> None:
    """Let htmx finish its swap and the countdown tick before a picture; fail on a layout that
    overflows."""
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(600)
    if page.locator("#stage").count():
        stage_fits(page)
    elif page.viewport_size["width"] <= 390:
        fits_phone(page)


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "docs")
