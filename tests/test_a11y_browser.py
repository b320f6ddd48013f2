"""axe-core on every participant and projector page, in every state a person sees it (the real
stack, Chromium): zero WCAG 2.1 A/AA violations. A whole event is played — join, rounds with a
picture question and a photo question, a time-up, the shadow league, the reveal, the podium — and
each page is audited as it stands."""
import io
import re
import shutil

import pytest
import redis
import requests
from itsdangerous import URLSafeSerializer
from PIL import Image
from playwright.sync_api import expect

from quiz.rehearsal_pages import answer_token, form_fields, question_choices, question_texts

from .a11y import Audits
from .browser_fixtures import PHONE, POLL, PROJECTOR, console_login, fill_join_form, stage_fits
from .helpers import ROOT
from .live_fixtures import SETTINGS, LiveStack
from .players import Api
from .projector_checks import readable_from_the_back

pytestmark = [pytest.mark.browser, pytest.mark.live]

BANK = """
challenges:
  - number: 1
    title: Cloud basics
    time_limit_seconds: 120
    keep_count: 3
    questions:
      - text: Which service stores objects?
        image: storage-bucket.png
        alt: A bucket full of coloured boxes under a cloud
        choices: [EC2, S3, SQS]
        answer: S3
      - text: Which are managed databases?
        choices: [RDS, DynamoDB, Lambda]
        answer: [RDS, DynamoDB]
  - number: 2
    title: Booth hunt
    time_limit_seconds: 5
    keep_fraction: 0.5
    questions:
      - text: Which status code means "Too Many Requests"?
        choices: ["404", "429", "503"]
        answer: "429"
      - type: photo
        text: Take a selfie at booth 12
  - number: 3
    title: The final
    questions:
      - text: Which method should be idempotent?
        choices: [PUT, POST, PATCH]
        answer: PUT
"""
RIGHT = {"Which service stores objects?": {"S3"},
         "Which are managed databases?": {"RDS", "DynamoDB"},
         'Which status code means "Too Many Requests"?': {"429"},
         "Which method should be idempotent?": {"PUT"}}


@pytest.fixture
def event(request, tmp_path, redis_url):
    """The live stack with this file's bank, whose rounds are final 2 s after their close (a player
    who has not pressed Start holds a round open for 2 minutes); more settings by indirect
    parametrization."""
    redis.Redis.from_url(redis_url).flushall()
    stack = LiveStack(tmp_path, redis_url, RESULTS_DELAY_SECONDS="2", START_WINDOW_SECONDS="120",
                      **getattr(request, "param", {}))
    try:
        stack.start()
        (tmp_path / "bank").mkdir()
        shutil.copy(ROOT / "questions" / "storage-bucket.png", tmp_path / "bank")
        (tmp_path / "bank" / "a11y.yaml").write_text(BANK)
        stack.flask("questions", "load", str(tmp_path / "bank" / "a11y.yaml"))
        yield stack
    finally:
        stack.stop()


def a_photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (40, 120, 200)).save(out, "JPEG")
    return out.getvalue()


PHOTO = a_photo()


def answer(link: str, right: bool) -> None:
    """A phone without JavaScript answers its multiple-choice questions (right or wrong) and sends
    a photo where one is asked."""
    http = requests.Session()
    page = http.get(link).text
    assert http.post(f"{link}/start", data=form_fields(page, "/start")).status_code == 200
    page = http.get(link).text
    data, texts = answer_token(page), question_texts(page)
    for name, options in question_choices(page).items():
        correct = RIGHT[texts[name]]
        chosen = sorted(correct) if right else [next(o for o in options if o not in correct)]
        data[name] = [options[c] for c in chosen]
    files = {field: ("me.jpg", PHOTO, "image/jpeg")
             for field in re.findall(r'<input type="file" name="(q\d+)"', page)}
    assert http.post(f"{link}/submit", data=data, files=files or None).status_code == 200


def to_leaderboard(console, url: str, number: int) -> None:
    """Once round `number` is final, step its reveal from the console to its leaderboard."""
    controls = console.locator(f"#reveal-{number}")
    for _ in range(20):  # final RESULTS_DELAY_SECONDS after the close
        console.goto(f"{url}/admin/")
        if controls.count():
            break
        console.wait_for_timeout(500)
    shows = controls.locator("strong")
    while (before := shows.inner_text()) != "the leaderboard":
        controls.get_by_role("button", name="Next ▶").click()
        # (a loaded machine: the POST and the console's reload may take seconds; if it never
        # moves, the console's flashes say why)
        try:
            expect(shows).not_to_have_text(before, timeout=20_000)
        except AssertionError as error:
            raise AssertionError(f"{error}\nflashes: {console.locator('.flash').all_inner_texts()}")


def unsubscribe_path(player_id: int) -> str:
    token = URLSafeSerializer(SETTINGS["SECRET_KEY"], salt="knockout-unsubscribe").dumps(player_id)
    return f"/u/{token}"


def test_every_participant_and_projector_page_has_no_wcag_violation(event, new_page):
    stack, api, audits = event, Api(event.url), Audits()
    display = new_page(**PROJECTOR)
    display.goto(f"{stack.url}/display")
    expect(display.get_by_text("Scan to play")).to_be_visible()
    audits.check(display, "projector: before (join QR, count)")

    phone = new_page(**PHONE)
    phone.goto(f"{stack.url}/register")
    audits.check(phone, "register: empty")
    phone.get_by_label("Email", exact=True).fill("not-an-email")
    phone.get_by_label("Mobile number").focus()
    expect(phone.locator(".has-error")).to_have_count(1)
    audits.check(phone, "register: a field's error (htmx)")
    phone.get_by_role("button", name="Join the game").click()
    expect(phone.locator(".has-error").first).to_be_visible()
    audits.check(phone, "register: field errors after Join")
    fill_join_form(phone, "Dana Scully", "dana@example.com", "+1 415 555 0142", "FBI")
    phone.get_by_role("button", name="Join the game").click()
    expect(phone.get_by_role("heading", level=1)).to_have_text("You're in, Dana Scully!")
    audits.check(phone, "register: the confirmation (htmx swap)")
    report_url = phone.url.split("?")[0]

    again = new_page(**PHONE)
    again.goto(f"{stack.url}/register")
    fill_join_form(again, "Dana Again", "dana@example.com", "+1 415 555 0143", "FBI")
    again.get_by_role("button", name="Join the game").click()
    expect(again.locator(".flash-error, .error").first).to_be_visible()
    audits.check(again, "register: already registered (409)")
    again.goto(f"{stack.url}/f/no-such-link")
    audits.check(again, "error page: 404")

    others = {name: api.register(name, n) for n, name in enumerate(
        ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Bobby Tables", "Edsger Dijkstra"],
        start=61)}
    phone.goto(report_url)
    audits.check(phone, "report: just registered")
    phone.goto(f"{report_url}/badge")
    audits.check(phone, "badge")
    phone.goto(report_url)
    link1 = phone.get_by_role("link", name="1. Cloud basics").get_attribute("href")
    phone.goto(link1)
    expect(phone.get_by_role("heading", name="Not started yet")).to_be_visible()
    audits.check(phone, "round: not started")
    phone.get_by_label("Tell us more").fill("My SMS never came")
    phone.get_by_role("button", name="Ask the help desk").click()
    expect(phone.locator("#help")).to_contain_text("My SMS never came")
    audits.check(phone, "round: help asked")

    api.start(1)
    expect(display.locator(".during .big-count")).to_be_visible(timeout=POLL)
    audits.check(display, "projector: during a round")
    expect(phone.get_by_role("heading", name="Ready?")).to_be_visible(timeout=POLL)
    audits.check(phone, "round: ready (swapped in)")
    phone.get_by_role("button", name="Start").click()
    expect(phone.locator('main[data-stored-form="forms"]')).to_have_count(1)
    expect(phone.locator("img.question-image")).to_be_visible()
    audits.check(phone, "round: the questions (stored form, a picture question)")
    for fieldset in phone.locator("fieldset.question").all():
        text = next(t for t in RIGHT if t in fieldset.locator("legend").inner_text())
        for choice in RIGHT[text]:
            fieldset.locator("label.choice", has_text=choice).click()
    phone.get_by_role("button", name="Submit answers").click()
    expect(phone.get_by_role("heading", name="Answers in")).to_be_visible()
    audits.check(phone, "round: submitted (open)")
    for n, name in enumerate(["Ada Lovelace", "Grace Hopper", "Bobby Tables"]):
        answer(others[name]["form_urls"]["1"], right=n < 2)
    api.end(1)
    late = new_page(**PHONE)
    late.goto(others["Alan Turing"]["form_urls"]["1"])
    expect(late.get_by_role("heading", name="Round closed")).to_be_visible()
    audits.check(late, "round: closed (knocked out)")

    # final 2 s after the close: the reveal, stepped from the console, then the leaderboard
    expect(display.locator(".reveal .round-label")).to_contain_text("question 1 of 2",
                                                                    timeout=POLL)
    audits.check(display, "projector: the reveal")
    console = new_page(viewport={"width": 1440, "height": 900})
    console_login(console, stack.url, "/admin/")
    to_leaderboard(console, stack.url, 1)
    expect(display.locator("ol.board")).to_be_visible(timeout=POLL)
    expect(display.locator("ol.board li.cut")).to_have_count(1)
    audits.check(display, "projector: after a round (leaderboard, cut)")
    phone.goto(report_url)
    expect(phone.locator("#answers-1")).to_be_visible()
    audits.check(phone, "report: answers beside the right ones")
    phone.goto(link1)
    audits.check(phone, "round: submitted (through, ranked)")

    api.start(2)
    expect(display.locator(".during .big-count")).to_be_visible(timeout=POLL)
    link2 = api.sms_link("+14155550142", 2)
    phone.goto(link2)
    phone.get_by_role("button", name="Start").click()
    expect(phone.locator('input[type="file"]')).to_have_count(1)
    audits.check(phone, "round: the questions (a photo question)")
    shadow = new_page(**PHONE)
    shadow.goto(others["Edsger Dijkstra"]["form_urls"]["2"])
    audits.check(shadow, "round: shadow league (ready)")
    shadow.get_by_role("button", name="Start").click()
    expect(shadow.locator("#shadow-note")).to_be_visible()
    audits.check(shadow, "round: the questions (the live page, shadow league)")
    # round 2 gives 5 s from Start (+1 s grace): the phone's time runs out
    phone.wait_for_timeout(6500)
    phone.reload()
    expect(phone.get_by_role("heading", name="Time's up")).to_be_visible()
    audits.check(phone, "round: time up")
    answer(others["Ada Lovelace"]["form_urls"]["2"], right=True)
    answer(others["Bobby Tables"]["form_urls"]["2"], right=True)
    expect(display.locator(".shadow-count")).to_be_visible(timeout=POLL)
    audits.check(display, "projector: during a round, shadow league counts")
    api.end(2)
    to_leaderboard(console, stack.url, 2)
    expect(display.locator("#shadow-panel li").first).to_be_visible(timeout=3 * POLL)
    audits.check(display, "projector: shadow league standings")

    api.start(3)
    answer(others["Ada Lovelace"]["form_urls"]["3"], right=True)
    api.end(3)
    to_leaderboard(console, stack.url, 3)
    expect(display.locator(".podium")).to_be_visible(timeout=POLL)
    audits.check(display, "projector: the podium")
    phone.goto(report_url)
    audits.check(phone, "report: out, after the final")

    phone.goto(f"{stack.url}{unsubscribe_path(1)}")  # Dana joined first
    audits.check(phone, "unsubscribe: asks")
    phone.get_by_role("button", name="Unsubscribe").click()
    # the form's answer is a new page: audit it once it is there, not the one going away
    expect(phone.get_by_role("heading", name="You're unsubscribed")).to_be_visible()
    audits.check(phone, "unsubscribe: done")
    audits.assert_clean()


# A look whose colours suit a light page: dark ones, unreadable as text on the dark projector
# as they are.
BRANDED = {"EVENT_NAME": "Acme Summit 2026", "BRAND_PRIMARY": "#1e3a8a",
           "BRAND_ACCENT": "#7a1f3d", "SPONSORS": "Globex,Initech,Umbrella,Hooli"}


@pytest.mark.parametrize("event", [{}, BRANDED], indirect=True, ids=["default", "branded"])
def test_the_projector_reads_from_the_back_of_the_room(event, new_page, request):
    """At 1920×1080, in every stage: every text at least 28 px and 4.5:1 over the stage's own
    background, the headline and countdown bigger; and axe finds nothing."""
    stack, api, audits = event, Api(event.url), Audits()
    look = request.node.callspec.id
    display = new_page(**PROJECTOR)
    display.goto(f"{stack.url}/display")

    def check(stage: str) -> None:
        stage_fits(display)
        readable_from_the_back(display, f"{look} projector: {stage}")
        audits.check(display, f"{look} projector: {stage}")

    expect(display.get_by_text("Scan to play")).to_be_visible()
    check("before")
    players = {name: api.register(name, n) for n, name in enumerate(
        ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Bobby Tables", "Edsger Dijkstra"],
        start=61)}
    api.start(1)
    expect(display.locator(".during .countdown")).to_be_visible(timeout=POLL)
    check("during a round (countdown)")
    for n, name in enumerate(["Ada Lovelace", "Grace Hopper", "Bobby Tables"]):
        answer(players[name]["form_urls"]["1"], right=n < 2)  # all three kept, two no-shows out
    api.end(1)
    expect(display.locator(".reveal .round-label")).to_be_visible(timeout=POLL)
    check("the reveal")
    console = new_page(viewport={"width": 1440, "height": 900})
    console_login(console, stack.url, "/admin/")
    to_leaderboard(console, stack.url, 1)
    expect(display.locator("ol.board li.cut")).to_have_count(1, timeout=POLL)
    check("after a round (leaderboard, cut)")
    api.start(2)
    for name in ["Ada Lovelace", "Edsger Dijkstra"]:  # Ada alone is kept; Edsger plays on
        answer(players[name]["form_urls"]["2"], right=True)
    expect(display.locator(".shadow-count")).to_be_visible(timeout=POLL)
    check("during a round (shadow league counts)")
    api.end(2)
    to_leaderboard(console, stack.url, 2)
    expect(display.locator("#shadow-panel li").first).to_be_visible(timeout=POLL)
    check("shadow league standings")
    api.start(3)
    answer(players["Ada Lovelace"]["form_urls"]["3"], right=True)
    api.end(3)
    to_leaderboard(console, stack.url, 3)
    expect(display.locator(".podium")).to_be_visible(timeout=POLL)
    check("the podium")
    audits.assert_clean()


# Every element's motion on a page, and a probe given a transition and an endless animation the
# way a script would (the CSP lets scripts set styles): what the page's CSS leaves of them.
MOTION = """() => {
  const probe = document.createElement('div');
  probe.className = 'button';
  probe.style.transition = 'opacity 2s';
  probe.style.animation = 'spin 2s infinite';
  document.body.append(probe);
  const moving = [...document.querySelectorAll('*')].map(e => [e, getComputedStyle(e)])
    .filter(([e, s]) => s.animationName !== 'none'
            || s.transitionDuration.split(',').some(d => parseFloat(d) > 0))
    .map(([e, s]) => e.tagName + '.' + e.className + ' ' + s.animationName + ' '
         + s.transitionDuration);
  probe.remove();
  return moving;
}"""


@pytest.mark.parametrize("path, options", [("/register", PHONE), ("/display", PROJECTOR)],
                         ids=["phone", "projector"])
def test_nothing_moves_for_who_asks_for_reduced_motion(stack, new_page, path, options):
    calm = new_page(**options, reduced_motion="reduce")
    calm.goto(f"{stack.url}{path}")
    assert calm.evaluate(MOTION) == []
    moving = new_page(**options, reduced_motion="no-preference")
    moving.goto(f"{stack.url}{path}")
    assert moving.evaluate(MOTION) == ["DIV.button spin 2s"]  # the probe alone moves
