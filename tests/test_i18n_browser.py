"""Languages in Chromium on the real stack: a German phone and a Spanish phone join and play a round
in their language, a phone switches language on the page (without JavaScript), and the projector
speaks Spanish when asked; the screenshots in docs/."""
import re
import time
from pathlib import Path

import pytest
import redis
from playwright.sync_api import Page, expect
from rq import Queue
from rq.registry import StartedJobRegistry

from .browser_fixtures import PHONE, PROJECTOR, fits_phone, stage_fits, tick_right_answers

pytestmark = [pytest.mark.browser, pytest.mark.live]

DOCS = Path(__file__).resolve().parent.parent / "docs"

# What each phone reads on the way, in its language.
WORDS = {
    "de": {"join": "Mach mit beim K.-o.-Quiz", "name": "Dein Name", "email": "E-Mail",
           "phone": "Handynummer", "company": "Firma", "consent": "Ich möchte meine Rundenlinks",
           "go": "Mitspielen", "in": "Du bist dabei, {}!", "checkin": "Dein Check-in-Code",
           "rounds": "Deine Runden", "ready": "Bereit?", "start": "Start",
           "submit": "Antworten senden", "answered": "Antworten sind da ✔",
           "result": "Du bist weiter|Diesmal bist du raus", "time": "Deine Zeit:",
           "help": "Brauchst du Hilfe?"},
    "es": {"join": "Únete al quiz de eliminación", "name": "Tu nombre",
           "email": "Correo electrónico", "phone": "Número de móvil", "company": "Empresa",
           "consent": "Quiero recibir mis enlaces", "go": "¡A jugar!",
           "in": "¡Ya estás dentro, {}!", "checkin": "Tu código de check-in",
           "rounds": "Tus rondas", "ready": "¿Listo?", "start": "Empezar",
           "submit": "Enviar respuestas", "answered": "Respuestas recibidas ✔",
           "result": "Sigues en juego|Esta vez quedas fuera", "time": "Tu tiempo:",
           "help": "¿Necesitas ayuda?"},
}


def speaks(page: Page, code: str) -> None:
    expect(page.locator("html")).to_have_attribute("lang", code)


def join(page: Page, url: str, code: str, name: str, n: int, shot: Path) -> None:
    words = WORDS[code]
    page.goto(f"{url}/register")
    speaks(page, code)
    expect(page.get_by_role("heading", level=1)).to_have_text(words["join"])
    page.get_by_label(words["name"]).fill(name)
    page.get_by_label(words["email"], exact=True).fill(f"{name.lower()}@example.com")
    page.get_by_label(words["phone"]).fill(f"+1 415 555 01{n:02d}")
    page.get_by_label(words["company"]).fill("Acme")
    page.get_by_label(words["consent"]).check()
    fits(page)
    page.screenshot(path=str(shot))
    page.get_by_role("button", name=words["go"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(words["in"].format(name))
    expect(page.get_by_role("heading", name=words["checkin"])).to_be_visible()
    speaks(page, code)


def drop_stored_forms(stack, players: int) -> None:
    """Once the worker has stored round 1's forms (and the round's start has checked them), remove
    them: this test reads the round page's own questions (the stored forms' wording is the
    worker's, per participant)."""
    folder = Path(stack.env["KNOCKOUT_INSTANCE"]) / "storage" / "forms" / "challenge1"
    forms = Queue("forms", connection=redis.Redis.from_url(stack.env["REDIS_URL"]))
    deadline = time.monotonic() + 20
    time.sleep(0.5)  # the start's jobs are queued
    while (len(list(folder.glob("*.html"))) < players or forms.count
           or StartedJobRegistry(queue=forms).count):
        assert time.monotonic() < deadline, "the worker's form jobs did not finish"
        time.sleep(0.2)
    for form in folder.glob("*.html"):
        form.unlink()


def fits(page: Page) -> None:
    """fits_phone, naming what sticks out when something does."""
    page.wait_for_load_state("load")
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > 390)
        .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right)
             + ' ' + (e.textContent || '').slice(0, 60))""")
    assert not wide, wide
    fits_phone(page)


def play(page: Page, code: str, shot: Path) -> None:
    """From the player's own page: open round 1, Start, answer right, submit."""
    words = WORDS[code]
    page.reload()
    expect(page.get_by_role("heading", name=words["rounds"])).to_be_visible()
    page.get_by_role("link", name="1. Cloud basics").click()
    expect(page.get_by_role("heading", name=words["ready"])).to_be_visible()
    expect(page.get_by_role("heading", name=words["help"])).to_be_visible()
    speaks(page, code)
    fits(page)
    page.screenshot(path=str(shot))
    page.get_by_role("button", name=words["start"], exact=True).click()
    expect(page.locator(".timer")).to_contain_text(words["time"])
    expect(page.locator(".timer strong")).to_have_text(re.compile(r"^\d+ s$"))
    speaks(page, code)
    tick_right_answers(page, 1)
    fits(page)
    page.get_by_role("button", name=words["submit"]).click()
    expect(page.get_by_role("heading", name=words["answered"])).to_be_visible()
    speaks(page, code)


def test_a_german_and_a_spanish_phone_join_and_play_in_their_language(stack, api, new_page,
                                                                     tmp_path):
    german = new_page(**PHONE, locale="de-DE")  # its Accept-Language: de-DE
    spanish = new_page(**PHONE, locale="es-ES")
    join(german, stack.url, "de", "Anneliese", 1, tmp_path / "phone-register-de.png")
    join(spanish, stack.url, "es", "Beatriz", 2, tmp_path / "phone-register-es.png")

    api.start(1)
    drop_stored_forms(stack, 2)
    play(german, "de", DOCS / "phone-round-de.png")
    play(spanish, "es", tmp_path / "phone-round-es.png")

    api.end(1)  # one of the two stays (keep_fraction 0.5): the faster
    for page, code in ((german, "de"), (spanish, "es")):
        page.reload()
        expect(page.locator(".lead.through, .lead.out")).to_have_text(
            re.compile(WORDS[code]["result"]))
        speaks(page, code)


def test_a_phone_switches_language_on_the_page_without_javascript(stack, api, new_page):
    joined = api.register("Chidi", 3)  # an English phone, no "language": the default
    phone = new_page(**PHONE, java_script_enabled=False)
    phone.goto(joined["report_url"])
    speaks(phone, "en")
    switch = phone.get_by_role("navigation", name="Language")
    expect(switch.locator("[aria-current]")).to_have_text("English")
    switch.get_by_role("button", name="Deutsch").click()
    speaks(phone, "de")
    expect(phone.get_by_role("heading", name="Deine Runden")).to_be_visible()
    switch = phone.get_by_role("navigation", name="Sprache")
    expect(switch.locator("[aria-current]")).to_have_text("Deutsch")
    expect(switch.get_by_role("button", name="Español")).to_have_attribute("lang", "es")
    assert phone.url == joined["report_url"]
    # the cookie: the join page speaks it too
    phone.goto(f"{stack.url}/register")
    speaks(phone, "de")
    # stored with the participant: their round page speaks it on another phone
    other = new_page(**PHONE, locale="es-ES")
    other.goto(joined["form_urls"]["1"])
    speaks(other, "de")
    expect(other.get_by_role("heading", name="Noch nicht gestartet")).to_be_visible()
    # and back, on the round page itself
    other.get_by_role("navigation", name="Sprache").get_by_role("button", name="English").click()
    speaks(other, "en")
    expect(other.get_by_role("heading", name="Not started yet")).to_be_visible()
    assert other.url == joined["form_urls"]["1"]


def test_the_projector_speaks_spanish_when_asked(stack, api, new_page):
    for n in range(1, 4):
        api.register(f"Jugador {n}", 10 + n)
    projector = new_page(**PROJECTOR)
    projector.goto(f"{stack.url}/display?lang=es")
    speaks(projector, "es")
    expect(projector.get_by_role("heading", name="Escanea para jugar")).to_be_visible()
    expect(projector.locator(".big-count")).to_have_text("3 inscritos")
    expect(projector.locator(".language-switch")).to_have_count(0)
    api.start(1)  # over the websocket, in Spanish
    expect(projector.locator(".countdown-label")).to_have_text("se cierra en", timeout=12_000)
    expect(projector.locator(".big-count")).to_have_text("0 de 3 han respondido")
    stage_fits(projector)
    projector.screenshot(path=str(DOCS / "display-during-es.png"))
