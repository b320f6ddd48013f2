"""A look's colours on the dark projector: the console says when one is too dark to read as text
there, and the projector's stylesheet carries a lighter shade of it that reads (4.5:1)."""
import html
import re

from quiz.branding import STAGE_BACKGROUND
from quiz.colours import contrast, lighter_until

from .helpers import ROOT, text
from .test_branding import brand_css, look_form


def test_a_lighter_shade_reads_on_the_stage_and_a_light_colour_stays_as_it_is():
    for dark in ("#1e3a8a", "#7a1f3d", "#000000", "#5b3df5"):
        lighter = lighter_until(dark, STAGE_BACKGROUND)
        assert lighter != dark and contrast(lighter, STAGE_BACKGROUND) >= 4.5, dark
        assert contrast(lighter, STAGE_BACKGROUND) < 5.5  # as little lighter as it takes
    assert lighter_until("#ffcc00", STAGE_BACKGROUND) == "#ffcc00"


def test_the_console_warns_of_a_dark_colour_and_the_projector_shows_it_lighter(client):
    response = look_form(client, name="Acme Summit", primary="#1e3a8a", accent="#ffcc00")
    assert response.status_code == 303, text(response)
    page = html.unescape(text(client.get("/admin/look/")))
    assert ("Primary #1e3a8a as text on the projector's dark stage: contrast 1.0:1, below 4.5:1. "
            "The projector shows its text in a lighter shade, #a5b0d0 (4.9:1).") in page
    assert "Accent #ffcc00 as text on the projector" not in page  # light enough as it is
    css = brand_css(client, client.get("/display").get_data(as_text=True))
    assert "--brand: #1e3a8a;" in css and "--brand-text: #a5b0d0;" in css
    assert "--accent-text: #ffcc00;" in css
    # the projector's stylesheet writes text in these, never in the brand colour itself
    display_css = (ROOT / "static" / "css" / "display.css").read_text()
    assert not re.search(r"[^-]color: var\(--(brand|accent)[,)]", display_css)
