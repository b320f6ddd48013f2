"""Languages on the pages: which one a participant's page speaks (stored > switch > Accept-Language
> default), the switch on the page, the API's "language", the projector, and the console."""
import re

import pytest
from sqlalchemy import event

from quiz.emails import unsubscribe_url
from quiz.extensions import db
from quiz.models import Participant
from quiz.stored_forms import form_token

from .helpers import csrf_from, session_token, token_field

GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
SPANISH = {"Accept-Language": "es-MX,es;q=0.8"}
JOIN = {"name": "Ada", "email": "ada@example.com", "phone": "+14155550100", "company": "Acme",
        "consent": "yes"}


def lang_of(page) -> str:
    return re.search(r'<html lang="(\w+)">', page.get_data(as_text=True)).group(1)


# --- the choice order ---------------------------------------------------------------------------

def test_a_participants_page_speaks_their_stored_language_over_the_switch_and_the_phone(
        client, make_participant):
    ada = make_participant("Ada")
    ada.language = "es"
    db.session.commit()
    client.set_cookie("lang", "de")
    page = client.get(f"/r/{ada.report_code}", headers=GERMAN)
    assert lang_of(page) == "es"
    assert "Tus rondas" in page.text and "Your rounds" not in page.text


@pytest.mark.parametrize("cookie, headers, expected", [
    ("de", SPANISH, "de"),  # the switch over the phone
    (None, SPANISH, "es"),  # the phone
    (None, {"Accept-Language": "fr"}, "en"),  # nothing the event offers: the default
    ("xx", GERMAN, "de"),  # not a language: the phone
])
def test_without_a_stored_language_the_switch_then_the_phone_then_the_default(
        client, make_participant, cookie, headers, expected):
    ada = make_participant("Ada")  # joined before languages: language is None
    if cookie:
        client.set_cookie("lang", cookie)
    assert lang_of(client.get(f"/r/{ada.report_code}", headers=headers)) == expected


@pytest.mark.config(LANGUAGES="en,es")
def test_a_stored_language_the_event_no_longer_offers_is_passed_over(client, make_participant):
    ada = make_participant("Ada")
    ada.language = "de"
    db.session.commit()
    assert lang_of(client.get(f"/r/{ada.report_code}", headers=SPANISH)) == "es"


def test_the_round_page_speaks_the_players_language_in_every_message(client, player, open_round):
    grace, links = player
    grace.language = "de"
    db.session.commit()
    page = client.get(f"/f/{links[1]}")
    assert lang_of(page) == "de" and "Noch nicht gestartet" in page.text
    # a refusal worded after the write, in her language (not the phone's)
    refused = client.post(f"/f/{links[1]}/start", data=dict([token_field(page.text)]),
                          headers=SPANISH)
    assert refused.status_code == 409
    assert "Runde 1 hat noch nicht begonnen" in refused.text
    open_round()
    page = client.get(f"/f/{links[1]}", headers=SPANISH)
    assert "Bereit?" in page.text and ">Start</button>" in page.text


def test_the_round_page_adds_no_query_for_the_language(app, client, player, open_round):
    """The herd's page: the language comes from the link's row it reads anyway."""
    grace, links = player
    open_round()
    client.get(f"/f/{links[1]}")  # what a process reads once (the look, the questions)
    statements = []
    event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    client.get(f"/f/{links[1]}")
    without = len(statements)
    grace.language = "es"
    db.session.commit()
    client.get(f"/f/{links[1]}", headers=GERMAN)  # the first page in Spanish: rendered and kept
    statements.clear()
    page = client.get(f"/f/{links[1]}", headers=GERMAN)
    assert lang_of(page) == "es"
    assert len(statements) == without


def test_pages_that_follow_the_phones_language_say_so_to_caches(client, player):
    _, links = player
    assert "Accept-Language" in client.get("/register").headers["Vary"]
    assert "Accept-Language" in client.get(f"/f/{links[1]}").headers["Vary"]


def test_the_report_is_cached_per_language(client, make_participant):
    ada = make_participant("Ada")
    first = client.get(f"/r/{ada.report_code}", headers=GERMAN)
    assert "Accept-Language" in first.headers["Vary"]
    again = client.get(f"/r/{ada.report_code}", headers={
        **SPANISH, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 200 and lang_of(again) == "es"


# --- registration stores the language -----------------------------------------------------------

def test_joining_stores_the_pages_language_with_the_participant(client):
    page = client.get("/register", headers=GERMAN)
    assert "Mitspielen" in page.text
    joined = client.post("/register", data={**JOIN, "csrf_token": csrf_from(page.text)},
                         headers=GERMAN)
    assert joined.status_code == 303
    assert db.session.scalar(db.select(Participant.language)) == "de"
    client.set_cookie("lang", "es")  # the switch wins over the phone
    page = client.get("/register", headers=GERMAN)
    client.post("/register", data={**JOIN, "email": "bo@example.com", "phone": "+14155550101",
                                    "csrf_token": csrf_from(page.text)}, headers=GERMAN)
    assert db.session.scalar(db.select(Participant.language)
                             .where(Participant.email == "bo@example.com")) == "es"


def test_the_join_forms_messages_speak_the_pages_language(client):
    page = client.get("/register", headers=SPANISH)
    refused = client.post("/register", data={"csrf_token": csrf_from(page.text), "email": "x"},
                          headers=SPANISH)
    assert refused.status_code == 422
    assert "Rellena este campo." in refused.text  # the name
    assert "Un correo necesita una @." in refused.text
    assert "Escribe tu número de móvil" in refused.text


def test_a_second_registration_is_refused_in_the_phones_language(client):
    """The duplicate answer is made in the group commit's write, away from the request: worded
    when it is answered."""
    assert client.post("/api/register", json={**JOIN, "consent": True}).status_code == 201
    again = client.post("/api/register", json={**JOIN, "consent": True}, headers=GERMAN)
    assert again.status_code == 409
    assert again.get_json()["message"].startswith("Diese E-Mail-Adresse ist schon angemeldet.")


@pytest.mark.parametrize("sent, headers, stored", [
    ("es", GERMAN, "es"),  # the field wins
    (None, GERMAN, "de"),  # else the Accept-Language header
    (None, {}, "en"),  # else the default
])
def test_the_api_takes_an_optional_language(client, sent, headers, stored):
    body = {**JOIN, "consent": True, **({"language": sent} if sent else {})}
    response = client.post("/api/register", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    assert set(response.get_json()) == {"user_id", "report_url", "form_urls", "current_form_url"} \
        or set(response.get_json()) == {"user_id", "report_url"}
    assert db.session.get(Participant, response.get_json()["user_id"]).language == stored


@pytest.mark.parametrize("sent", ["fr", 5, "", ["de"]])
def test_a_language_the_api_cannot_take_is_a_400_naming_the_ones_it_can(client, sent):
    response = client.post("/api/register", json={**JOIN, "consent": True, "language": sent})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "bad_language"
    assert "en (English), de (Deutsch), es (Español)" in body["message"]
    assert body["fields"]["language"] == body["message"]
    assert not db.session.scalar(db.select(db.func.count()).select_from(Participant))


@pytest.mark.config(LANGUAGES="en,es")
def test_the_api_refuses_a_language_the_event_does_not_offer(client):
    response = client.post("/api/register", json={**JOIN, "consent": True, "language": "de"})
    assert response.status_code == 400
    assert "choose one of en (English), es (Español)." in response.get_json()["message"]


# --- the switch ---------------------------------------------------------------------------------

def test_the_switch_lists_the_events_languages_each_in_itself(client):
    page = client.get("/register", headers=GERMAN).text
    nav = re.search(r'<nav class="language-switch".*?</nav>', page, re.S).group(0)
    assert 'aria-label="Sprache"' in nav
    assert '<span lang="de" aria-current="true">Deutsch</span>' in nav
    assert 'value="en" lang="en">English</button>' in nav
    assert 'value="es" lang="es">Español</button>' in nav


@pytest.mark.config(LANGUAGES="en,de")
def test_only_the_enabled_languages_are_offered(client):
    assert "Español" not in client.get("/register").text


@pytest.mark.config(LANGUAGES="en")
def test_one_language_needs_no_switch(client):
    assert "language-switch" not in client.get("/register").text


def test_the_switch_on_a_participants_page_stores_their_choice(client, make_participant):
    ada = make_participant("Ada")
    page = client.get(f"/r/{ada.report_code}", headers=GERMAN)
    assert f'action="/r/{ada.report_code}/lang"' in page.text
    switched = client.post(f"/r/{ada.report_code}/lang",
                           data={"lang": "es", "csrf_token": csrf_from(page.text)})
    assert switched.status_code == 303 and switched.location.endswith(f"/r/{ada.report_code}")
    assert "lang=es" in switched.headers["Set-Cookie"]
    db.session.expire_all()
    assert db.session.get(Participant, ada.id).language == "es"
    assert lang_of(client.get(f"/r/{ada.report_code}", headers=GERMAN)) == "es"


def test_the_switch_on_a_round_page_takes_the_session_token_or_the_stored_forms(
        client, app, player):
    grace, links = player
    page = client.get(f"/f/{links[1]}")
    assert f'action="/f/{links[1]}/lang"' in page.text
    assert client.post(f"/f/{links[1]}/lang", data={  # a page from before: the session's token
        "lang": "de", "csrf_token": session_token(client)}).status_code == 303
    db.session.expire_all()
    assert db.session.get(Participant, grace.id).language == "de"
    # a stored form (object storage, no session) proves itself with its form token
    fresh = app.test_client()
    assert fresh.post(f"/f/{links[1]}/lang", data={
        "lang": "es", "form_token": form_token(links[1])}).status_code == 303
    db.session.expire_all()
    assert db.session.get(Participant, grace.id).language == "es"


def test_the_switch_needs_the_pages_token(client, make_participant):
    ada = make_participant("Ada")
    refused = client.post(f"/r/{ada.report_code}/lang", data={"lang": "es"})
    assert refused.status_code == 400 and "security token" in refused.text
    refused = client.post("/f/" + "x" * 22 + "/lang", data={"lang": "es", "form_token": "nope"})
    assert refused.status_code == 400
    db.session.expire_all()
    assert db.session.get(Participant, ada.id).language is None


@pytest.mark.parametrize("sent", ["fr", "", None])
def test_an_unknown_language_is_a_400_that_names_the_offered_ones(client, make_participant, sent):
    ada = make_participant("Ada")
    page = client.get(f"/r/{ada.report_code}")
    data = {"csrf_token": csrf_from(page.text), **({"lang": sent} if sent is not None else {})}
    refused = client.post(f"/r/{ada.report_code}/lang", data=data)
    assert refused.status_code == 400
    assert "choose one of en (English), de (Deutsch), es (Español)." in refused.text
    db.session.expire_all()
    assert db.session.get(Participant, ada.id).language is None


@pytest.mark.parametrize("target, back", [
    ("/register?x=1", "/register?x=1"),
    ("//evil.example/x", "/register"),
    ("https://evil.example/", "/register"),
    ("/\\evil.example", "/register"),
    (None, "/register"),
])
def test_the_switch_elsewhere_sets_the_cookie_and_goes_back_to_the_page(client, target, back):
    page = client.get("/register")
    data = {"lang": "de", "csrf_token": csrf_from(page.text),
            **({"next": target} if target else {})}
    switched = client.post("/lang", data=data)
    assert switched.status_code == 303 and switched.location == back
    assert lang_of(client.get("/register")) == "de"


# --- the projector and the console --------------------------------------------------------------

def test_the_projector_speaks_the_default_whatever_the_laptop_asks_for(client):
    page = client.get("/display", headers=GERMAN)
    assert lang_of(page) == "en" and "Scan to play" in page.text
    assert "language-switch" not in page.text
    assert 'ws-connect="/ws?topic=display"' in page.text


def test_the_projector_speaks_the_language_it_is_asked_for(client):
    page = client.get("/display?lang=es")
    assert lang_of(page) == "es" and "Escanea para jugar" in page.text
    assert 'ws-connect="/ws?topic=display-es"' in page.text
    assert 'hx-get="/display?lang=es"' in page.text  # its poll stays Spanish
    assert "language-switch" not in page.text
    refused = client.get("/display?lang=fr")
    assert refused.status_code == 400 and "choose one of en (English)" in refused.text


@pytest.mark.config(DEFAULT_LANGUAGE="de")
def test_the_projectors_live_stage_is_rendered_per_language(app):
    from quiz.extensions import state
    hub = state(app).hub
    with app.test_request_context("/", headers=SPANISH):
        assert "Scannen und mitspielen" in hub.renderers["display"]()
        assert "Escanea para jugar" in hub.renderers["display-es"]()
        assert "Scan to play" in hub.renderers["display-en"]()


def test_the_console_stays_english(client):
    page = client.get("/admin/login", headers=GERMAN)
    assert lang_of(page) == "en" and "language-switch" not in page.text


def test_the_unsubscribe_page_speaks_the_language_of_their_emails(client, make_participant):
    ada = make_participant("Ada")
    ada.language = "de"
    db.session.commit()
    page = client.get(unsubscribe_url(ada.id).removeprefix("http://quiz.test"), headers=SPANISH)
    assert lang_of(page) == "de" and "Keine E-Mails mehr von" in page.text


@pytest.mark.batch_effects
def test_a_phone_that_joins_in_german_gets_its_confirmation_sms_and_email_in_german(client,
                                                                                    run_jobs):
    """The language chosen on the join page travels with the new participant to the worker."""
    from sqlalchemy import select

    from quiz.models import Message
    form = csrf_from(client.get("/register", headers=GERMAN).get_data(as_text=True))
    joined = client.post("/register", headers=GERMAN, data={
        **JOIN, "csrf_token": form})
    assert joined.status_code == 303
    spanish = client.post("/api/register", json={**JOIN, "email": "bea@example.com",
                                                 "phone": "+14155550101", "consent": True,
                                                 "language": "es"})
    assert spanish.status_code == 201
    run_jobs()
    db.session.expire_all()
    rows = {(m.to, m.channel): m.body for m in db.session.scalars(select(Message))}
    assert "du bist für Knockout angemeldet" in rows[("ada@example.com", "email")]
    assert "te has inscrito en Knockout" in rows[("bea@example.com", "email")]
    german_sms = rows[("+14155550100", "sms")]
    assert german_sms != rows[("+14155550101", "sms")]
    assert any(word in german_sms for word in ("Du ", "du ", "Dein", "dein"))
