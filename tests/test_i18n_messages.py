"""What Knockout sends a participant, in their language: SMS (moto's SNS over HTTP, the RQ worker on
a real Redis), emails (moto's SES), stored forms; the organizer's wording per language in the
console; the default wordings' translations."""
from email import message_from_string, policy
from types import SimpleNamespace

import pytest
from jinja2 import UndefinedError
from sqlalchemy import select

from quiz import email_templates, sms_templates, stored_forms, tasks
from quiz.extensions import db
from quiz.i18n import SUPPORTED
from quiz.models import Challenge, FormLink, Message, MessageTemplate, Participant
from quiz.registration import register_participant, validate_registration
from quiz.sample_sms import sample_body
from quiz.storage import get_storage

from .helpers import login, post_form, start, submit, text
from .test_email import (drain, html_of, refuse_phones, ses,  # noqa: F401 (the ses fixture)
                         text_of)
from .test_notify import sns  # noqa: F401 (the sns fixture)

LANGUAGES = ("en", "de", "es")


def join(n: int, language: str | None) -> SimpleNamespace:
    """Register as the join form does, with the language the phone spoke (stored by
    registration); the player's columns (the worker ends the test's session)."""
    clean = validate_registration({"name": f"Player {n}", "email": f"p{n}@example.com",
                                   "phone": f"+1415555{n:04d}", "consent": True})
    joined = register_participant({**clean, "language": language})
    db.session.commit()
    participant = db.session.get(Participant, joined.id)
    assert participant.language == language
    return SimpleNamespace(id=participant.id, name=participant.name, phone=participant.phone,
                           email=participant.email, report_code=participant.report_code)


def sms_to(sns, participant) -> dict[str, str]:
    """The SMS moto accepted for this player, by kind (checked against what Knockout queued)."""
    delivered = sorted(body for phone, body in sns.values() if phone == participant.phone)
    queued = dict(db.session.execute(select(Message.kind, Message.body).where(
        Message.channel == "sms", Message.participant_id == participant.id)).all())
    assert sorted(queued.values()) == delivered
    return queued


def expected(kind: str, language: str, participant, challenge=None, link=None) -> str:
    """The default wording of `kind` in `language`, filled in as the worker does."""
    values = {"event": "Knockout", "name": participant.name,
              "report": f"http://quiz.test/r/{participant.report_code}",
              "link": f"http://quiz.test/f/{link}"}
    if challenge is not None:
        values.update(number=challenge.number, title=challenge.title)
    return sms_templates.default_template(kind, language).format(**values)


def link_of(participant, number=1) -> str:
    return db.session.scalar(select(FormLink.code).join(Challenge).where(
        FormLink.participant_id == participant.id, Challenge.number == number))


def first_round() -> SimpleNamespace:
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    return SimpleNamespace(number=challenge.number, title=challenge.title)


# --- SMS ------------------------------------------------------------------------------------------

def test_each_player_gets_confirmation_link_and_results_sms_in_their_language(
        client, load_bank, api_headers, run_jobs, sns):
    load_bank()
    english, german, spanish = join(1, None), join(2, "de"), join(3, "es")
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    code = link_of(german)
    start(client, code)
    submit(client, code, [["S3"], ["RDS", "DynamoDB"]])  # the German player goes through
    drain(run_jobs)
    challenge = first_round()
    for player, language in ((english, "en"), (german, "de"), (spanish, "es")):
        assert sms_to(sns, player) == {
            "confirmation": expected("confirmation", language, player),
            "round_link": expected("round_link", language, player, challenge, link_of(player))}
    assert "Your personal link" in sms_to(sns, english)["round_link"]
    assert "Dein persönlicher Link" in sms_to(sns, german)["round_link"]
    assert "Tu enlace personal" in sms_to(sns, spanish)["round_link"]
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    drain(run_jobs)
    through = sms_to(sns, german)["result_through"]
    assert through == expected("result_through", "de", german, challenge)
    assert through.startswith("Knockout: Runde 1 geschafft, Player 2!")
    assert sms_to(sns, spanish)["result_out_shadow"] == expected("result_out_shadow", "es",
                                                                 spanish, challenge)
    assert sms_to(sns, english)["result_out_shadow"] == expected("result_out_shadow", "en",
                                                                 english, challenge)


def test_a_language_edited_in_the_console_is_used_for_that_language_only(
        client, load_bank, api_headers, run_jobs, sns):
    load_bank()
    english, german, spanish = join(1, None), join(2, "de"), join(3, "es")
    login(client)
    saved = post_form(client, "/admin/messages?language=de", "/admin/messages/round_link",
                      {"language": "de", "body": "Los geht's, {name}: {link}"})
    assert saved.status_code == 303 and saved.location.endswith("/admin/messages?language=de"
                                                                "#sms-round_link")
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    drain(run_jobs)
    challenge = first_round()
    assert sms_to(sns, german)["round_link"] == \
        f"Los geht's, Player 2: http://quiz.test/f/{link_of(german)}"
    assert sms_to(sns, spanish)["round_link"] == expected("round_link", "es", spanish, challenge,
                                                          link_of(spanish))
    assert sms_to(sns, english)["round_link"] == expected("round_link", "en", english, challenge,
                                                          link_of(english))
    # back to the default: German players get Knockout's German wording again
    reset = post_form(client, "/admin/messages?language=de", "/admin/messages/round_link/reset",
                      {"language": "de", "confirmed": "yes"})
    assert reset.status_code == 303
    assert sms_templates.template_for("round_link", "de") == \
        sms_templates.default_template("round_link", "de")


@pytest.mark.config(LANGUAGES="en,es")
def test_a_language_the_event_no_longer_offers_falls_back_to_the_default(
        client, load_bank, api_headers, run_jobs, sns):
    load_bank()
    german = join(1, "de")  # joined while German was offered
    db.session.add(MessageTemplate(kind="round_link", language="de", body="Deutsch: {link}"))
    db.session.commit()
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    drain(run_jobs)
    assert sms_to(sns, german) == {
        "confirmation": expected("confirmation", "en", german),
        "round_link": expected("round_link", "en", german, first_round(), link_of(german))}
    login(client)
    page = client.get("/admin/messages?language=de")
    assert page.status_code == 404
    assert "The event doesn't offer the language 'de': pick one of en, es" in text(page)
    refused = post_form(client, "/admin/messages", "/admin/messages/round_link",
                        {"language": "de", "body": "{link}"})
    assert refused.status_code == 404 and "doesn't offer the language 'de'" in text(refused)


def test_reminders_go_out_in_each_players_language_and_text(client, load_bank, run_jobs, sns):
    from quiz.models import Reminder
    load_bank()
    english, german, spanish = join(1, None), join(2, "de"), join(3, "es")
    sms_templates.save_template("reminder", "{event} – Erinnerung: {text}", "de")
    db.session.commit()
    login(client)
    page = text(client.get("/admin/messages"))
    assert "Text in Deutsch (optional)" in page and "Text in Español (optional)" in page
    scheduled = post_form(client, "/admin/messages", "/admin/reminders", {
        "text": "Hall B at 14:00", "send_at": "23:59", "text_de": "Halle B um 14 Uhr",
        "text_es": " "})
    assert scheduled.status_code == 303
    reminder = db.session.scalar(select(Reminder))
    assert reminder.texts == {"de": "Halle B um 14 Uhr"}  # blank: the default language's text
    assert "de: Halle B um 14 Uhr" in text(client.get("/admin/messages"))
    tasks.send_reminder(reminder.id)
    drain(run_jobs)
    assert sms_to(sns, german)["reminder"] == "Knockout – Erinnerung: Halle B um 14 Uhr"
    assert sms_to(sns, spanish)["reminder"] == "Knockout: Hall B at 14:00"
    assert sms_to(sns, english)["reminder"] == "Knockout: Hall B at 14:00"


@pytest.mark.parametrize("fields, field, says", [
    ({"de": "x" * 301}, "text_de", "Keep the Deutsch text under 300 characters (it has 301)"),
    ({"fr": "Salle B"}, "text_fr", "'fr' is not one of the event's other languages (de, es)"),
    ({"en": "Hall B"}, "text_en", "'en' is not one of the event's other languages"),
])
def test_a_reminder_text_in_another_language_is_checked_too(app, fields, field, says):
    from datetime import timedelta

    from quiz.clock import utcnow
    from quiz.errors import ValidationError
    from quiz.reminders import schedule_reminder
    with pytest.raises(ValidationError) as refused:
        schedule_reminder("Hall B", utcnow() + timedelta(hours=1), fields)
    assert says in refused.value.fields[field]


def test_a_reminder_text_too_long_is_refused_beside_its_language(client):
    from quiz.models import Reminder
    login(client)
    refused = post_form(client, "/admin/messages", "/admin/reminders", {
        "text": "Hall B", "send_at": "23:59", "text_es": "y" * 320})
    assert refused.status_code == 422
    assert "Keep the Español text under 300 characters (it has 320)" in text(refused)
    assert db.session.scalar(select(Reminder)) is None


# --- the console's Messages page ----------------------------------------------------------------

def test_the_messages_page_edits_each_languages_version(client):
    login(client)
    page = text(client.get("/admin/messages"))
    assert "Your personal link: {link}" in page and 'lang="en"' in page
    for code, name in SUPPORTED.items():
        assert f'href="/admin/messages?language={code}"' in page and name in page
    german = text(client.get("/admin/messages?language=de"))
    assert "Dein persönlicher Link: {link}" in german and 'name="language" value="de"' in german
    assert 'aria-current="page" class="current">Deutsch' in german
    assert "1 SMS with sample values" in german and "outside the GSM alphabet" not in german
    sms_templates.save_template("winner", "{event}: ¡{name}, has ganado! Enhorabuena. "
                                "Aquí están tus resultados: {report} " + "y" * 20, "es")
    db.session.commit()
    spanish = text(client.get("/admin/messages?language=es"))
    parts = sms_templates.sms_parts(sample_body("winner", "es"))
    assert parts == 3  # 139 characters: one GSM SMS, but three once "í" makes it UCS-2
    assert "3 SMS with sample values (a character outside the GSM alphabet" in spanish


def test_bad_wording_is_refused_in_the_language_it_was_typed_in(client):
    login(client)
    refused = post_form(client, "/admin/messages?language=es", "/admin/messages/round_link",
                        {"language": "es", "body": "Ronda {number}"})
    assert refused.status_code == 422
    page = text(refused)
    assert "The round message must contain {link}" in page
    assert "Ronda {number}</textarea>" in page and 'name="language" value="es"' in page
    assert db.session.scalar(select(MessageTemplate).where(MessageTemplate.language == "es")) \
        is None
    wrong = post_form(client, "/admin/messages", "/admin/messages/round_link",
                      {"language": "fr", "body": "{link}"})
    assert wrong.status_code == 404 and "pick one of en, de, es (LANGUAGES)" in text(wrong)


def test_a_test_sms_reads_as_the_chosen_language_does(client, run_jobs, sns):
    login(client)
    sent = post_form(client, "/admin/messages", "/admin/test-sms",
                     {"kind": "round_link", "language": "es", "phone": "+14155550199"})
    assert sent.status_code == 303
    drain(run_jobs)
    [(phone, body)] = sns.values()
    assert phone == "+14155550199"
    assert body == ('Knockout: ¡empieza la ronda 1 "Ronda de ejemplo"! Tu enlace personal: '
                    "http://quiz.test/f/sample-link-to-nowhere")
    refused = post_form(client, "/admin/messages", "/admin/test-sms",
                        {"kind": "round_link", "language": "xx", "phone": "+14155550199"})
    assert refused.status_code == 422
    assert "The event doesn't offer the language 'xx'" in text(refused)


# --- emails -------------------------------------------------------------------------------------

def test_confirmation_email_in_each_players_language_through_ses(client, load_bank, run_jobs,
                                                                 ses):
    load_bank()
    players = {"en": join(1, None), "de": join(2, "de"), "es": join(3, "es")}
    drain(run_jobs)
    mails = {}
    for sent in ses:
        mail = message_from_string(sent.raw_data, policy=policy.default)
        mails[sent.destinations[0]] = mail
    english, german, spanish = (mails[players[code].email] for code in LANGUAGES)
    assert english["Subject"] == "Knockout: you're in, Player 1"
    assert german["Subject"] == "Knockout: Du bist dabei, Player 2"
    assert spanish["Subject"] == "Knockout: ya estás dentro, Player 3"
    assert "du bist für Knockout angemeldet" in text_of(german)
    assert "Keine E-Mails mehr von Knockout: http://quiz.test/u/" in text_of(german)
    assert '<html lang="de">' in html_of(german) and ">Abmelden</a>" in html_of(german)
    assert "te has inscrito en Knockout" in text_of(spanish)
    assert '<html lang="es">' in html_of(spanish) and "Darte de baja" in html_of(spanish)
    assert "No more emails from Knockout" in text_of(english)


@pytest.mark.parametrize("links_in_registration", [True, False])
def test_a_failed_link_sms_brings_the_link_by_email_in_the_players_language(
        client, load_bank, api_headers, run_jobs, sns, app, monkeypatch, links_in_registration):
    load_bank()
    app.config["LINKS_IN_REGISTRATION"] = links_in_registration
    spanish = join(1, "es")
    refuse_phones(monkeypatch, {spanish.phone})
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    drain(run_jobs)
    fallback = db.session.scalar(select(Message).where(Message.channel == "email",
                                                       Message.kind.like("link_fallback%")))
    if links_in_registration:
        assert fallback.subject == "Knockout: tu enlace para la ronda 1"
        assert f"Aquí lo tienes: http://quiz.test/f/{link_of(spanish)}" in fallback.body
    else:
        assert fallback.subject == "Knockout: la ronda 1 ha empezado"
        assert "Pregunta en el punto de ayuda" in fallback.body and "/f/" not in fallback.body
    assert '<html lang="es">' in fallback.html


def test_the_unsubscribe_page_speaks_the_emails_language(client, load_bank):
    from quiz.emails import unsubscribe_url
    load_bank()
    german = join(1, "de")
    link = unsubscribe_url(german.id).removeprefix("http://quiz.test")
    assert '<html lang="de">' in client.get(link).get_data(as_text=True)
    english = join(2, None)
    link = unsubscribe_url(english.id).removeprefix("http://quiz.test")
    assert '<html lang="en">' in client.get(link, headers={"Accept-Language": "es"}).text


def test_final_results_email_in_each_players_language_with_an_edited_spanish_version(
        client, load_bank, api_headers, run_jobs):
    load_bank()
    english, german, spanish = join(1, None), join(2, "de"), join(3, "es")
    login(client)
    saved = post_form(client, "/admin/emails?language=es", "/admin/emails/results", {
        "language": "es", "subject": "{{ event }}: ¡se acabó!",
        "text": "Hola {{ name }}: {{ report }} Baja: {{ unsubscribe }}",
        "html": "<p>Hola {{ name }}</p><a href=\"{{ unsubscribe }}\">baja</a>"})
    assert saved.status_code == 303
    for number in (1, 2):
        client.post(f"/api/admin/start-challenge/{number}", headers=api_headers)
        client.post(f"/api/admin/end-challenge/{number}", headers=api_headers)
    drain(run_jobs)
    results = {m.participant_id: m for m in db.session.scalars(
        select(Message).where(Message.kind == "results"))}
    assert results[spanish.id].subject == "Knockout: ¡se acabó!"
    assert results[spanish.id].body.startswith(f"Hola Player 3: http://quiz.test/r/"
                                               f"{spanish.report_code} Baja: ")
    assert results[german.id].subject == "Knockout: die Endergebnisse"
    assert results[english.id].subject == "Knockout: the final results"


def test_the_emails_page_per_language_with_preview_and_errors_beside_the_field(client):
    login(client)
    german = text(client.get("/admin/emails?language=de"))
    assert "Knockout: Du bist dabei, Ada Lovelace" in german  # the preview, in German
    assert 'name="language" value="de"' in german and "Beispielrunde" in german
    refused = post_form(client, "/admin/emails?language=de", "/admin/emails/confirmation", {
        "language": "de", "subject": "Hallo", "text": "Hallo {{ name }}",
        "html": "<p>{{ unsubscribe }}</p>"})
    assert refused.status_code == 422
    page = text(refused)
    assert "The text must contain {{ unsubscribe }}" in page
    assert "Hallo {{ name }}</textarea>" in page
    assert 'name="language" value="de"' in page
    unknown = post_form(client, "/admin/emails", "/admin/emails/confirmation", {
        "language": "it", "subject": "x", "text": "{{ unsubscribe }}", "html": "{{ unsubscribe }}"})
    assert unknown.status_code == 404 and "doesn't offer the language 'it'" in text(unknown)
    test = post_form(client, "/admin/emails", "/admin/emails/test",
                     {"kind": "results", "language": "es", "to": "me@example.com"})
    assert test.status_code == 303
    [row] = db.session.scalars(select(Message).where(Message.to == "me@example.com")).all()
    assert row.subject == "Knockout: los resultados finales"


# --- stored forms -------------------------------------------------------------------------------

def test_a_german_players_stored_form_is_german(app, load_bank):
    load_bank()
    german, english = join(1, "de"), join(2, None)
    stored_forms.regenerate([german.id, english.id])
    store = get_storage()
    page = store.get(stored_forms.form_key("forms", 1, german.id)).decode()
    assert '<html lang="de">' in page and "Du spielst als <strong>Player 1</strong>" in page
    assert ">Deine Ergebnisse</a>" in page
    page = store.get(stored_forms.form_key("forms", 1, english.id)).decode()
    assert '<html lang="en">' in page and "Playing as <strong>Player 2</strong>" in page


# --- the default wordings' translations ---------------------------------------------------------

@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", list(sms_templates.TEMPLATES))
def test_every_default_sms_passes_the_checks_and_costs_no_more_parts_than_english(
        app, kind, language):
    body = sms_templates.default_template(kind, language)
    assert sms_templates.check_template(kind, body) == body

    def placeholders(wording):
        import string
        return {name for _, name, _, _ in string.Formatter().parse(wording) if name}
    assert placeholders(body) == placeholders(sms_templates.default_template(kind, "en"))
    # GSM characters only (an á would make the whole SMS UCS-2: 70 characters a part)
    assert set(body) <= sms_templates.GSM_BASIC | sms_templates.GSM_EXTENSION
    parts = sms_templates.sms_parts(sample_body(kind, language))
    assert parts <= sms_templates.sms_parts(sample_body(kind, "en")), sample_body(kind, language)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", list(email_templates.DEFAULTS))
def test_every_default_email_passes_the_checks(app, kind, language):
    words = email_templates.default_wording(kind, language)
    email_templates.check(kind, words.subject, words.text, words.html)
    if language != "en":
        assert words != email_templates.default_wording(kind, "en")


# An organizer's edits the plain join (text and placeholders only) fills in, and some it leaves to
# Jinja (filters, tags, a placeholder the values lack): each must read as Jinja's render reads.
EDITED = ["Hi {{ name }},\n\n{{event}}: {{ report }}\r\n\n", "{{- name -}} \n {# note #}{{ qr }}",
          '<a href="{{ unsubscribe }}">{{ name }}</a>{% raw %}{{ name }}{% endraw %}\n',
          "{{ name|upper }}", "{% if name %}{{ name }}{% endif %}", "{{ name ~ event }}",
          "{{ range }} and {{ name }}", "{{ number }}"]


@pytest.mark.parametrize("html", [False, True])
def test_an_email_is_filled_in_as_jinja_renders_it(app, html):
    values = {"event": "Fish & <Chips>", "name": "Zoë \"O'Brien\" <b>", "number": 3,
              "report": "https://quiz.test/r/a?b=1&c=2", "unsubscribe": "https://quiz.test/u/x",
              "qr": "cid:qr", "title": "Round <1>", "link": "https://quiz.test/f/c?d=1&e=2"}
    env = email_templates.HTML_ENV if html else email_templates.TEXT_ENV
    defaults = [email_templates.default_wording(kind, language)
                for kind in email_templates.DEFAULTS for language in LANGUAGES]
    sources = EDITED + [part for words in defaults for part in (words.subject, words.text,
                                                                words.html)]
    for source in sources:
        assert email_templates._compiled(html, source)(values) == \
            env.from_string(source).render(values), source
    # values without a placeholder the wording holds: Jinja's own error, either way
    with pytest.raises(UndefinedError):
        email_templates._compiled(html, "Hi {{ name }}")({"event": "x"})


def test_sms_parts_count_gsm_and_unicode_texts():
    assert sms_templates.sms_parts("a" * 160) == 1
    assert sms_templates.sms_parts("a" * 161) == 2
    assert sms_templates.sms_parts("ä" * 160) == 1  # German umlauts are GSM
    assert sms_templates.sms_parts("á" * 70) == 1  # Spanish á is not: UCS-2
    assert sms_templates.sms_parts("á" * 71) == 2
    assert sms_templates.sms_parts("{" * 80) == 1 and sms_templates.sms_parts("{" * 81) == 2
