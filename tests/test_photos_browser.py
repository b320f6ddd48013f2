"""A photo answer in a real browser: a phone picks a photo and sends it, staff accept it in the
console.

Debian's Chromium driven by Playwright against the real stack (gunicorn + worker); screenshots go to
docs/.
"""
import re
from pathlib import Path

import pytest
import requests
from PIL import Image, ImageDraw

from quiz.rehearsal_pages import answer_token, form_fields, question_choices

from .browser_fixtures import PHONE, console_login
from .helpers import ROOT

from playwright.sync_api import expect  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.live]

DOCS = ROOT / "docs"
BANK = """
challenges:
  - number: 1
    title: Booth hunt
    questions:
      - text: Which service stores objects?
        choices: [EC2, S3, SQS]
        answer: S3
      - type: photo
        text: Take a selfie at booth 12 (the Knockout stand)
        points: 2
  - number: 2
    title: Final
    questions:
      - text: 2 + 2?
        choices: ["3", "4", "5"]
        answer: "4"
"""


def selfie(path: Path, colour: tuple, label: str) -> Path:
    """A stand-in for a phone photo: a real JPEG, 1600×1200, with a sign in it."""
    image = Image.new("RGB", (1600, 1200), colour)
    draw = ImageDraw.Draw(image)
    draw.ellipse((500, 250, 1100, 850), fill=(240, 200, 160))
    draw.rectangle((200, 900, 1400, 1150), fill=(255, 255, 255))
    draw.text((260, 960), label, fill=(20, 20, 20), font_size=150)
    image.save(path, "JPEG", quality=85)
    return path


@pytest.fixture
def stack(live_stack, tmp_path):
    bank = tmp_path / "photos.yaml"
    bank.write_text(BANK)
    live_stack.flask("questions", "load", str(bank))
    return live_stack


def register(stack, name: str, n: int) -> str:
    response = requests.post(f"{stack.url}/api/register", json={
        "name": name, "email": f"photo{n}@example.com", "phone": f"+1415555{n:04d}",
        "company": "Acme", "consent": True})
    assert response.status_code == 201, response.text
    return response.json()["form_urls"]["1"]


def send_over_http(link: str, photo: Path) -> None:
    """A phone without JavaScript: Start, then the multipart form with the right choice and the
    photo."""
    http = requests.Session()
    page = http.get(link).text
    http.post(f"{link}/start", data=form_fields(page, "/start"))
    page = http.get(link).text
    (name, options), = question_choices(page).items()
    field = re.search(r'<input type="file" name="(q\d+)"', page).group(1)
    response = http.post(f"{link}/submit", data={**answer_token(page), name: options["S3"]},
                         files={field: (photo.name, photo.read_bytes(), "image/jpeg")},
                         allow_redirects=False)
    assert response.status_code == 303, response.text[:2000]


def test_phone_sends_a_photo_and_staff_accept_it_in_the_console(stack, new_page, tmp_path):
    api = {"Authorization": "Bearer live-token"}
    links = {name: register(stack, name, n)
             for n, name in enumerate(["Ada Lovelace", "Grace Hopper", "Alan Turing"], 1)}
    assert requests.post(f"{stack.url}/api/admin/start-challenge/1", headers=api).status_code == 200
    send_over_http(links["Grace Hopper"],
                   selfie(tmp_path / "grace.jpg", (60, 110, 200), "BOOTH 12"))
    send_over_http(links["Alan Turing"], selfie(tmp_path / "alan.jpg", (200, 80, 60), "BOOTH 7?"))

    phone = new_page(**PHONE)
    phone.goto(links["Ada Lovelace"])
    phone.get_by_role("button", name="Start").click()
    phone.get_by_label("S3").check()
    phone.locator("input[type=file]").set_input_files(
        selfie(tmp_path / "ada.jpg", (90, 160, 90), "BOOTH 12"))
    phone.locator("input[type=file]").scroll_into_view_if_needed()
    phone.screenshot(path=str(DOCS / "photo-answer-phone.png"), full_page=True)
    phone.get_by_role("button", name="Submit answers").click()
    expect(phone.get_by_role("heading", name=re.compile("Answers in"))).to_be_visible()

    console = new_page(viewport={"width": 1280, "height": 900})
    console_login(console, stack.url, "/admin/")
    expect(console.locator("#rounds")).to_contain_text("3 photos not reviewed yet")
    console.get_by_role("link", name="Photos").click()
    # (the console's own "review" link matches a loose name: wait for the Photos page first, or its
    # boosted swap may land after the review page's and leave the index showing)
    expect(console.get_by_role("heading", name="Rounds with photo questions")).to_be_visible()
    console.get_by_role("link", name="Review", exact=True).click()
    expect(console.get_by_role("heading", level=1)).to_contain_text("round 1")
    cards = console.locator(".photo-card")
    expect(cards).to_have_count(3)
    for card in cards.all():  # each photo really loads, from Knockout's staff-only route
        expect(card.locator("img")).to_have_js_property("complete", True)
        assert card.locator("img").evaluate("img => img.naturalWidth") > 0
    ada = console.locator(".photo-card", has_text="Ada Lovelace")
    ada.get_by_role("button", name="Accept").click()
    expect(ada.locator(".badge")).to_have_text("accepted")
    alan = console.locator(".photo-card", has_text="Alan Turing")
    alan.get_by_role("button", name="Reject").click()
    expect(alan.locator(".badge")).to_have_text("rejected")
    expect(alan).to_have_class(re.compile(r"\bphoto-rejected\b"))
    console.screenshot(path=str(DOCS / "photo-review-console.png"), full_page=True)

    end = requests.post(f"{stack.url}/api/admin/end-challenge/1", headers=api)
    assert end.status_code == 200, end.text
    board = {e["name"]: e["score"]
             for e in requests.get(f"{stack.url}/api/leaderboard/1").json()["entries"]}
    assert board == {"Ada Lovelace": 3, "Grace Hopper": 1, "Alan Turing": 1}
    grace = console.locator(".photo-card", has_text="Grace Hopper")
    grace.get_by_role("button", name="Accept").click()
    expect(grace).to_contain_text("ranking is final")  # after the close, the console says why
