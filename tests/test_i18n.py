"""Languages: which language a participant's page speaks, and the catalogs behind it."""
import subprocess

import pytest
from babel.messages.pofile import read_po

from quiz import create_app
from quiz.config import ROOT, ConfigError, TestConfig
from quiz.i18n import SUPPORTED, TRANSLATIONS, language_of

CATALOGS = sorted(code for code in SUPPORTED if code != "en")


def test_a_phone_gets_the_language_it_asks_for_among_the_events(client):
    page = client.get("/register", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert '<html lang="de">' in page.text
    assert "Mach mit beim K.-o.-Quiz" in page.text
    page = client.get("/register", headers={"Accept-Language": "es-MX,es;q=0.8"})
    assert '<html lang="es">' in page.text and "Únete al quiz de eliminación" in page.text


def test_a_language_the_event_does_not_offer_falls_back_to_the_default(client):
    page = client.get("/register", headers={"Accept-Language": "fr-FR,fr;q=0.9"})
    assert '<html lang="en">' in page.text and "Join the knockout quiz" in page.text


@pytest.mark.config(LANGUAGES="en,es")
def test_a_disabled_language_is_never_chosen(client):
    page = client.get("/register", headers={"Accept-Language": "de,es;q=0.5"})
    assert '<html lang="es">' in page.text


def test_the_switch_cookie_wins_over_accept_language(client):
    client.set_cookie("lang", "es")
    page = client.get("/register", headers={"Accept-Language": "de"})
    assert '<html lang="es">' in page.text
    client.set_cookie("lang", "xx")  # not a language: ignored
    assert '<html lang="de">' in client.get("/register", headers={"Accept-Language": "de"}).text


@pytest.mark.parametrize("languages, default, message", [
    ("en,fr", "en", "Knockout speaks en, de, es"),
    ("", "en", "Knockout speaks"),
    ("en,de", "es", "DEFAULT_LANGUAGE='es' is not among LANGUAGES"),
])
def test_languages_the_app_cannot_speak_are_refused_at_start(tmp_path, languages, default,
                                                              message):
    config = type("Config", (TestConfig,), {"LANGUAGES": languages, "DEFAULT_LANGUAGE": default,
                                            "INSTANCE_PATH": str(tmp_path)})
    with pytest.raises(ConfigError, match=message):
        create_app(config)


def test_a_participant_is_written_to_in_their_language_while_the_event_offers_it(app):
    class Someone:
        language = "de"
    assert language_of(Someone()) == "de"
    Someone.language = None
    assert language_of(Someone()) == "en"
    app.config["LANGUAGES"] = ["en", "es"]
    Someone.language = "de"
    assert language_of(Someone()) == "en"


@pytest.mark.parametrize("code", CATALOGS)
def test_every_string_is_translated_and_none_is_fuzzy(code):
    with open(TRANSLATIONS / code / "LC_MESSAGES" / "messages.po", "rb") as po:
        catalog = read_po(po)
    with open(TRANSLATIONS / "messages.pot", "rb") as pot:
        template = read_po(pot)
    missing = [m.id for m in template if m.id and not (catalog.get(m.id) and
                                                       _translated(catalog.get(m.id)))]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not missing, f"{code}: untranslated (run bin/translations extract, translate): {missing}"
    assert not fuzzy, f"{code}: fuzzy entries to check: {fuzzy}"


def test_the_template_holds_every_marked_string_and_the_mo_files_are_current(tmp_path):
    """`bin/translations extract` and `compile` were run after the last change to a marked string
    or a translation."""
    subprocess.run([str(ROOT / ".venv/bin/pybabel"), "extract", "--no-location", "--sort-output",
                    "--project", "Knockout", "-F", "babel.cfg", "-k", "_l", "-o",
                    str(tmp_path / "messages.pot"), "."], cwd=ROOT, check=True,
                   capture_output=True)
    with open(tmp_path / "messages.pot", "rb") as fresh, \
            open(TRANSLATIONS / "messages.pot", "rb") as committed:
        assert {m.id for m in read_po(fresh)} == {m.id for m in read_po(committed)}, \
            "run bin/translations extract"
    for code in CATALOGS:
        folder = TRANSLATIONS / code / "LC_MESSAGES"
        subprocess.run([str(ROOT / ".venv/bin/pybabel"), "compile", "-i",
                        str(folder / "messages.po"), "-o", str(tmp_path / f"{code}.mo")],
                       check=True, capture_output=True)
        assert (tmp_path / f"{code}.mo").read_bytes() == (folder / "messages.mo").read_bytes(), \
            "run bin/translations compile"


def _translated(message) -> bool:
    if isinstance(message.string, tuple | list):
        return all(message.string)
    return bool(message.string)
