"""The event's look set in the console reaches a projector that is never reloaded, and a phone
(the real stack, Chromium); the screenshots in docs/."""
import time
from pathlib import Path

from PIL import Image, ImageDraw
from playwright.sync_api import expect

from quiz.branding import LOOK_CACHE_SECONDS

from .browser_fixtures import (PHONE, PROJECTOR, assert_not_reloaded, console_login, fits_phone,
                               mark_page, stage_fits)

DOCS = Path(__file__).resolve().parent.parent / "docs"
BRAND_IS = ("colour => getComputedStyle(document.documentElement).getPropertyValue('--brand')"
            ".trim() === colour")


def a_logo(path: Path) -> Path:
    image = Image.new("RGBA", (480, 160), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, 479, 159), radius=36, fill=(255, 204, 0, 255))
    draw.ellipse((24, 24, 136, 136), fill=(11, 16, 32, 255))
    draw.rectangle((170, 50, 450, 110), fill=(11, 16, 32, 255))
    image.save(path)
    return path


def test_a_branded_projector_and_phone(stack, new_page, tmp_path):
    projector = new_page(**PROJECTOR)
    projector.goto(f"{stack.url}/display")
    expect(projector.locator(".topbar .brand")).to_have_text("Knockout")
    mark_page(projector)

    console = new_page()
    console_login(console, stack.url, "/admin/look/")
    console.get_by_label("Event name").fill("Acme Summit 2026")
    console.get_by_label("Primary colour (hex)").fill("#ffcc00")
    console.get_by_label("Accent colour (hex)").fill("#ffcc00")
    console.get_by_label("Logo (PNG").set_input_files(str(a_logo(tmp_path / "acme.png")))
    console.get_by_label("Sponsors, one a line").fill("Globex\nInitech\nUmbrella\nHooli")
    console.get_by_role("button", name="Save the look").click()
    expect(console.locator(".flash-ok")).to_contain_text("Look saved")
    saved = time.monotonic()
    expect(console.locator(".contrast-note").first).to_contain_text("below WCAG AA")

    # Over the websocket: the projector was never reloaded.
    expect(projector.locator(".topbar .brand")).to_have_text("Acme Summit 2026", timeout=30_000)
    expect(projector.locator(".topbar .logo")).to_be_visible()
    expect(projector.locator("footer.sponsors")).to_contain_text("Hooli")
    # The colours arrive as a stylesheet of their own (the CSP allows no inline style): applied.
    projector.wait_for_function(BRAND_IS, arg="#ffcc00", timeout=30_000)
    assert_not_reloaded(projector)
    stage_fits(projector)
    projector.wait_for_function("() => [...document.images].every(i => i.complete)")
    projector.screenshot(path=str(DOCS / "display-branded.png"))

    # A phone's page: the other web process may still hold its copy of the old look (it keeps one
    # LOOK_CACHE_SECONDS, a herd's pages cost no query for it); a page asked for after that shows
    # the new one.
    time.sleep(max(0.0, saved + LOOK_CACHE_SECONDS + 0.5 - time.monotonic()))
    phone = new_page(**PHONE)
    phone.goto(f"{stack.url}/register")
    expect(phone.locator(".brand-logo img")).to_be_visible()
    expect(phone.locator(".eyebrow")).to_have_text("Acme Summit 2026", timeout=15_000)
    phone.wait_for_function(BRAND_IS, arg="#ffcc00", timeout=30_000)
    fits_phone(phone)
    phone.screenshot(path=str(DOCS / "phone-branded.png"))
