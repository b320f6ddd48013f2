"""Check-in kiosk, help desk and reports in a real browser (Debian's Chromium via Playwright, the
real stack).

The kiosk decodes QR codes for real: from a photo (PNG made by segno) through the file input,
and from the camera, with Chromium's fake camera playing a Y4M video of the badge's QR code.
"""
import html
import re
from pathlib import Path

import pytest
import requests
import segno
from playwright.sync_api import expect

from .browser_fixtures import (CHROMIUM, CHROMIUM_ARGS, PHONE, POLL, assert_not_reloaded,
                               console_login, mark_page)
from .players import answer_over_http

pytestmark = [pytest.mark.browser, pytest.mark.live]

DOCS = Path(__file__).resolve().parent.parent / "docs"
KIOSK = {"viewport": {"width": 1280, "height": 860}}


def checkin_code(stack, report_url: str) -> str:
    """The check-in code as the participant's page shows it (e.g. '7KQ2M-9XD4T')."""
    page = requests.get(report_url).text
    return re.search(r'<p class="checkin-code"><code>([0-9A-Z-]+)</code>', page).group(1)


def qr_y4m(text: str, path: Path, width: int = 640, height: int = 480) -> Path:
    """A few frames of Y4M video (4:2:0) showing the QR code, for Chromium's fake camera."""
    matrix = [list(row) for row in segno.make(text, error="m", micro=False).matrix]
    size = len(matrix)
    module = min(width, height) * 3 // 4 // size
    left, top = (width - size * module) // 2, (height - size * module) // 2
    luma = bytearray([235]) * (width * height)
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                for dy in range(module):
                    start = (top + y * module + dy) * width + left + x * module
                    luma[start:start + module] = bytes([16]) * module
    chroma = bytes([128]) * ((width // 2) * (height // 2))
    frame = b"FRAME\n" + bytes(luma) + chroma + chroma
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode() + frame * 5)
    return path


def test_kiosk_checks_in_by_typed_code_and_by_a_photo_of_the_qr_code(stack, api, new_page,
                                                                      tmp_path):
    ada = api.register("Ada Lovelace", 301)
    grace = api.register("Grace Hopper", 302)
    page = new_page(**KIOSK)
    console_login(page, stack.url, "/admin/checkin")
    expect(page.get_by_role("heading", name=re.compile("Check-in"))).to_be_visible()
    result = page.locator("#kiosk-result")
    expect(result).to_have_attribute("data-outcome", "idle")
    mark_page(page)

    # typed as a person would: lower case, with the dash
    typed = checkin_code(stack, ada["report_url"]).lower()
    page.get_by_label("Check-in code").fill(typed)
    page.get_by_label("Check-in code").press("Enter")
    expect(result).to_have_attribute("data-outcome", "ok")
    expect(result.get_by_role("heading")).to_have_text("Ada Lovelace")
    expect(result).to_contain_text("Acme")
    expect(page.locator("#kiosk-count")).to_have_text("1 of 2 checked in")
    expect(page.get_by_label("Check-in code")).to_have_value("")

    page.get_by_label("Check-in code").fill(typed)
    page.get_by_role("button", name="Check in").click()
    expect(result).to_have_attribute("data-outcome", "already")
    expect(result).to_contain_text(re.compile(r"Already checked in at \d\d:\d\d"))

    page.get_by_label("Check-in code").fill("ZZZZZ-ZZZZZ")
    page.get_by_label("Check-in code").press("Enter")
    expect(result).to_have_attribute("data-outcome", "unknown_code")
    expect(result.get_by_role("heading")).to_have_text("Unknown code")
    page.screenshot(path=str(DOCS / "admin-checkin-unknown.png"))

    # A photo of the QR code on Grace's own page (a screenshot of it), decoded in the kiosk by the
    # vendored jsQR.
    phone = new_page(**PHONE)
    phone.goto(grace["report_url"])
    phone.locator(".checkin-card .qr-badge").screenshot(path=str(tmp_path / "badge.png"))
    page.locator("#scanner-file").set_input_files(tmp_path / "badge.png")
    expect(result).to_have_attribute("data-outcome", "ok")
    expect(result.get_by_role("heading")).to_have_text("Grace Hopper")
    expect(page.locator("#kiosk-count")).to_have_text("2 of 2 checked in")
    assert_not_reloaded(page)
    page.screenshot(path=str(DOCS / "admin-checkin.png"))
    assert "Checked in ✔" in html.unescape(requests.get(grace["report_url"]).text)

    # The printable badge, as the printer sees it: name, company, the same QR code, no page chrome.
    badge = new_page(viewport={"width": 500, "height": 600})
    badge.goto(grace["report_url"] + "/badge")
    badge.emulate_media(media="print")
    expect(badge.locator(".badge-card .name")).to_have_text("Grace Hopper")
    expect(badge.locator(".badge-card .company")).to_have_text("Acme")
    expect(badge.locator(".no-print")).to_be_hidden()
    badge.screenshot(path=str(DOCS / "badge-print.png"))


def test_kiosk_reads_a_badge_with_the_camera(stack, api, browser, tmp_path):
    player = api.register("Katherine Johnson", 311)
    video = qr_y4m(checkin_code(stack, player["report_url"]).replace("-", ""),
                   tmp_path / "badge.y4m")
    camera = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
              f"--use-file-for-fake-video-capture={video}"]
    # A second Chromium from the same Playwright, with a fake camera playing the badge.
    with_camera = browser.browser_type.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_ARGS + camera)
    try:
        context = with_camera.new_context(**KIOSK)
        context.set_default_timeout(15_000)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        console_login(page, stack.url, "/admin/checkin")
        page.get_by_role("button", name="Start camera").click()
        result = page.locator("#kiosk-result")
        expect(result).to_have_attribute("data-outcome", "ok")
        expect(result.get_by_role("heading")).to_have_text("Katherine Johnson")
        expect(page.locator("#scanner-status")).to_contain_text("Read a code")
        assert not errors, errors
    finally:
        with_camera.close()


def test_kiosk_works_without_javascript(stack, api, new_page):
    player = api.register("Mary Jackson", 321)
    page = new_page(java_script_enabled=False, **KIOSK)
    console_login(page, stack.url, "/admin/checkin")
    # no camera without JS: the typed code is the way
    expect(page.locator("#scanner")).to_be_hidden()
    page.get_by_label("Check-in code").fill(checkin_code(stack, player["report_url"]))
    page.get_by_role("button", name="Check in").click()
    expect(page.locator("#kiosk-result")).to_have_attribute("data-outcome", "ok")
    expect(page.locator("#kiosk-result").get_by_role("heading")).to_have_text("Mary Jackson")


def test_help_request_round_trip(stack, api, new_page):
    player = api.register("Dorothy Vaughan", 331)
    api.start(1)
    link = api.sms_link("+14155550331", 1)
    desk = new_page(viewport={"width": 1280, "height": 860})
    console_login(desk, stack.url, "/admin/help")
    expect(desk.locator("#help")).to_contain_text("No one is waiting")
    mark_page(desk)

    phone = new_page(**PHONE)
    phone.goto(link)
    help_form = phone.locator("#help")
    help_form.get_by_label("My answers didn't go through").check()
    help_form.get_by_label(re.compile("Tell us more")).fill(
        "I pressed Submit and it <b>spun</b> forever")
    help_form.get_by_role("button", name="Ask the help desk").click()
    expect(phone.locator(".flash-ok")).to_contain_text("with the help desk")
    expect(phone.locator("#help-status")).to_contain_text("Waiting for the help desk")
    phone.locator("#help").scroll_into_view_if_needed()
    phone.screenshot(path=str(DOCS / "phone-help.png"))
    mark_page(phone)

    # The console shows it live (websocket), the markup as text.
    item = desk.locator(".desk-item", has_text="Dorothy Vaughan")
    expect(item).to_contain_text("I pressed Submit and it <b>spun</b> forever")
    assert desk.locator(".desk-item b").count() == 0
    expect(item.get_by_role("button", name="Resend round 1 link")).to_be_visible()
    desk.screenshot(path=str(DOCS / "admin-help.png"))
    item.get_by_role("textbox").fill("   ")  # passes the browser's `required`, not the server
    item.get_by_role("button", name="Reply & resolve").click()
    expect(desk.locator(".flash-error")).to_contain_text("Write a reply")
    item.get_by_role("textbox").fill("Your answers arrived at 10:02. You're fine!")
    item.get_by_role("button", name="Reply & resolve").click()
    expect(desk.locator("#help")).to_contain_text("No one is waiting")
    assert_not_reloaded(desk)

    # The phone, left open, shows the reply by itself.
    expect(phone.locator(".help-reply")).to_contain_text(
        "Your answers arrived at 10:02. You're fine!", timeout=POLL)
    assert_not_reloaded(phone)
    phone.screenshot(path=str(DOCS / "phone-help-answered.png"))
    report = requests.get(player["report_url"]).text
    assert "You&#39;re fine!" in report


def test_a_viewer_watches_the_live_console_without_the_hosts_buttons(stack, api, new_page):
    """The rounds table pushed live is one render for every organizer: it carries End round, and
    a viewer's page hides it (the server would refuse it anyway)."""
    stack.flask("admin", "create", "--username", "vic", "--password", "viewer-password",
                "--role", "viewer")
    api.register("Katherine Johnson", 341)
    page = new_page(viewport={"width": 1280, "height": 860})
    page.goto(f"{stack.url}/admin/")
    page.get_by_label("Username").fill("vic")
    page.get_by_label("Password").fill("viewer-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#rounds")).to_contain_text("draft")
    assert page.get_by_role("button", name="Start round 1").count() == 0
    mark_page(page)
    api.start(1)
    expect(page.locator("#rounds .badge-open")).to_be_visible(timeout=POLL)  # pushed, no reload
    actions = page.locator("#rounds form[data-needs=host]")  # End round 1, Start the others
    expect(actions.filter(has_text="End round 1")).to_have_count(1)
    for index in range(actions.count()):
        expect(actions.nth(index)).to_be_hidden()
    assert_not_reloaded(page)


def test_reports_of_winner_survivor_and_knocked_out_players_match_the_data(stack, api, new_page):
    names = ["Ann", "Bob", "Cy", "Di"]
    players = {name: api.register(name, 340 + n) for n, name in enumerate(names)}
    api.start(1)
    answer_over_http(players["Ann"]["form_urls"]["1"], 1, right=True)
    answer_over_http(players["Bob"]["form_urls"]["1"], 1, right=True, think=0.3)
    answer_over_http(players["Cy"]["form_urls"]["1"], 1, right=False)
    api.end(1)  # Di never answered: out; 3 ranked, ⌈3 × 0.5⌉ = 2 stay: Cy is out
    page = new_page(**PHONE)

    def standing(number: int) -> dict:
        """user id → (rank, score, time, ranked) from the public leaderboard: submitters best
        first."""
        entries = requests.get(f"{stack.url}/api/leaderboard/{number}").json()["entries"]
        played = [e for e in entries if e["score"] is not None]
        return {e["user_id"]: (place, e["score"], e["response_time_seconds"], len(played))
                for place, e in enumerate(played, start=1)}

    def check_round(number: int, data: tuple) -> None:
        rank, score, seconds, ranked = data
        row = page.locator(f"tr.round-row[data-round='{number}']")
        expect(row.locator(".score")).to_have_text(str(score))
        expect(row.locator(".rank")).to_contain_text(f"{rank} / {ranked}")
        expect(row.locator(".time")).to_have_text(f"{seconds:.1f} s")

    round1 = standing(1)
    ids = {name: players[name]["user_id"] for name in names}
    assert ([round1[ids[n]][0] for n in ("Ann", "Bob", "Cy")] == [1, 2, 3]
            and ids["Di"] not in round1)
    page.goto(players["Cy"]["report_url"])
    check_round(1, round1[ids["Cy"]])
    expect(page.locator("#why-out")).to_contain_text("ranked 3 of 3")
    expect(page.locator("#why-out")).to_contain_text("keep_fraction 0.5")
    _, bob_score, bob_time, _ = round1[ids["Bob"]]
    expect(page.locator("#why-out")).to_contain_text(
        f"The cut line was place 2: {bob_score} points in {bob_time:.1f} s.")
    page.screenshot(path=str(DOCS / "phone-report-out.png"), full_page=True)

    page.goto(players["Bob"]["report_url"])  # a survivor
    check_round(1, round1[ids["Bob"]])
    expect(page.locator("tr.round-row[data-round='1'] td:first-child .verdict")).to_have_text(
        "Through: ranked 2 of 3; the top 2 stayed.")
    expect(page.locator("#why-out")).to_have_count(0)

    page.goto(players["Di"]["report_url"])
    expect(page.locator("#why-out")).to_contain_text("no answers arrived")

    for number in (2, 3):
        api.start(number)
        answer_over_http(players["Ann"]["form_urls"][str(number)], number, right=True)
        if number == 2:
            answer_over_http(players["Bob"]["form_urls"]["2"], 2, right=True, think=0.3)
        api.end(number)
    page.goto(players["Ann"]["report_url"])
    expect(page.locator("tr.round-row[data-round='3'] td:first-child .verdict")).to_have_text(
        "Winner! First place in the final.")
    check_round(3, standing(3)[ids["Ann"]])
    check_round(1, round1[ids["Ann"]])
    expect(page.locator("tr.round-row[data-round='3'] .percentile")).to_have_text(
        "top 100% ahead of 0%")

    # Cacheable: the same tag comes back as 304 with no body.
    first = requests.get(players["Ann"]["report_url"])
    again = requests.get(players["Ann"]["report_url"],
                         headers={"If-None-Match": first.headers["ETag"]}, cookies=first.cookies)
    assert again.status_code == 304 and again.content == b""
