"""The console's confirms can't be skipped: a costly action posted without htmx's dialog (no
HX-Request: the click came before htmx ran) and without the confirmation page's yes does nothing
and gets that page, asking the same question; its Yes does the action, once."""
import io
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable

import pytest
from sqlalchemy import func, select

from quiz.clock import utcnow
from quiz import email_templates, sms_templates
from quiz.extensions import db
from quiz.models import (AdminUser, AuditEntry, Challenge, FormLink, Participant, Question,
                         Reminder, Role)
from quiz.reminders import schedule_reminder
from quiz.rounds import disqualify
from quiz.web import asks
from quiz.web.confirm import Question as Asked, confirm_first

from .helpers import (ROOT, SMALL_BANK, csrf_from, forms_of, login, press_start, say_yes,
                      text)
from .test_roles import PASSWORD_HASH, log_in, snapshot

# A closed round stays reopenable for a minute (Reopen round's world).
pytestmark = pytest.mark.config(RESULTS_DELAY_SECONDS=60)

API = {"Authorization": "Bearer test-token"}
BANK_TWO = SMALL_BANK.replace("title: Warm-up", "title: Warm-up, again")


def round_status(number: int) -> str:
    db.session.expire_all()
    return db.session.scalar(select(Challenge.status).where(Challenge.number == number))


def player(name: str) -> Participant:
    return db.session.scalar(select(Participant).where(Participant.name == name))


@dataclass
class Action:
    """A confirmed console action: its world, its form, the question it asks there, the page it
    came from, and whether it has happened."""
    name: str
    prepare: Callable[[], dict]   # the world; returns the values the URL and the checks need
    url: str                      # formatted with prepare's values
    question: Callable[[dict], str]
    page: str                     # where the button is (its CSRF token), formatted too
    done: Callable[[dict], bool]
    form: dict | None = None
    back: str = "/admin/"


def _players(make_participant, names=("Lin", "Max")):
    for name in names:
        make_participant(name)


def _open(client, number=1):
    assert client.post(f"/api/admin/start-challenge/{number}", headers=API).status_code == 200


def _end(client, number=1):
    assert client.post(f"/api/admin/end-challenge/{number}", headers=API).status_code == 200


def questions_in(number: int) -> int:
    return db.session.scalar(select(func.count()).select_from(Question).join(Challenge).where(
        Challenge.number == number))


def actions(client, load_bank, make_participant) -> dict[str, Action]:
    def bank_and_players():
        load_bank()
        _players(make_participant)
        return {}

    def round_open():
        bank_and_players()
        _open(client)
        return {}

    def round_ended():
        round_open()
        _end(client)
        return {}

    def lin_in():
        round_open()
        return {"id": player("Lin").id}

    def lin_out():
        round_open()
        disqualify(player("Lin"), "phone swapped")
        db.session.commit()
        return {"id": player("Lin").id}

    def another_account():
        user = AdminUser(username="vic", role=Role.DESK, password_hash=PASSWORD_HASH)
        db.session.add(user)
        db.session.commit()
        return {"id": user.id}

    def a_reminder():
        reminder = schedule_reminder("Final at 16:00", utcnow() + timedelta(hours=2))
        db.session.commit()
        return {"id": reminder.id}

    def reminder_cancelled(world):
        db.session.expire_all()
        return db.session.get(Reminder, world["id"]).status == "cancelled"

    def lin_is(out: bool):
        def check(world):
            db.session.expire_all()
            return (db.session.get(Participant, world["id"]).eliminated_in is not None) == out
        return check

    def account_gone(world):
        db.session.expire_all()
        return db.session.get(AdminUser, world["id"]) is None

    def sms_edited():
        sms_templates.save_template("round_link", "Go, {name}: {link}", "en")
        db.session.commit()
        return {}

    def email_edited():
        email_templates.save("confirmation", "Hi", "Hello {{ name }}. Stop: {{ unsubscribe }}",
                             "<p>Hello {{ name }}</p><a href=\"{{ unsubscribe }}\">stop</a>", "en")
        db.session.commit()
        return {}

    def back_to_default(module, kind):
        def check(_):
            db.session.expire_all()
            return kind not in module.edited("en")
        return check

    return {action.name: action for action in [
        Action("start round", bank_and_players, "/admin/rounds/1/start",
               lambda _: "Start round 1 and text 2 players their links?", "/admin/",
               lambda _: round_status(1) == "open"),
        Action("end round", round_open, "/admin/rounds/1/end",
               lambda _: "End round 1 now? 2 invited players haven't pressed Start yet (2 of them "
                         "haven't had their link sent yet). Everyone who hasn't answered is out, "
                         "and so is the bottom half.", "/admin/",
               lambda _: round_status(1) == "closed"),
        Action("reopen round", round_ended, "/admin/rounds/1/reopen",
               lambda _: "Reopen round 1? Everyone it knocked out is back in, and no results go "
                         "out.", "/admin/", lambda _: round_status(1) == "open"),
        Action("disqualify", lin_in, "/admin/participants/{id}/disqualify",
               lambda _: "Disqualify Lin? They are out of the game for good.",
               "/admin/participants?q=Lin", lin_is(out=True),
               form={"reason": "phone swapped", "q": "Lin"}, back="/admin/participants?q=Lin"),
        Action("reinstate", lin_out, "/admin/participants/{id}/reinstate",
               lambda _: "Bring Lin back into the game?", "/admin/participants?q=Lin",
               lin_is(out=False), form={"q": "Lin"}, back="/admin/participants?q=Lin"),
        Action("remove account", another_account, "/admin/staff/{id}/remove",
               lambda _: "Remove vic's account? They can no longer log in.", "/admin/staff/",
               account_gone, back="/admin/staff/"),
        Action("load questions", bank_and_players, "/admin/questions",
               lambda _: "Load this question bank? Rounds not started yet are replaced by what "
                         "the file says.", "/admin/",
               lambda _: db.session.scalar(select(Challenge.title).where(
                   Challenge.number == 1)) == "Warm-up, again", form={"yaml": BANK_TWO}),
        Action("cancel reminder", a_reminder, "/admin/reminders/{id}/cancel",
               lambda _: "Cancel this reminder?", "/admin/messages", reminder_cancelled,
               back="/admin/messages"),
        Action("delete question", bank_and_players, "/admin/questions/rounds/1/questions/1/delete",
               lambda _: "Delete question 1 of round 1?", "/admin/questions/",
               lambda _: questions_in(1) == 1, back="/admin/questions/#round-1"),
        Action("reset SMS wording", sms_edited, "/admin/messages/round_link/reset",
               lambda _: "Reset the round link SMS in English to the default wording? What you "
                         "wrote for it is lost.", "/admin/messages",
               back_to_default(sms_templates, "round_link"), form={"language": "en"},
               back="/admin/messages?language=en#sms-round_link"),
        Action("reset email wording", email_edited, "/admin/emails/confirmation/reset",
               lambda _: "Reset the confirmation email in English to the default wording? What "
                         "you wrote for it is lost.", "/admin/emails",
               back_to_default(email_templates, "confirmation"), form={"language": "en"},
               back="/admin/emails?language=en#email-confirmation"),
    ]}


NAMES = ["start round", "end round", "reopen round", "disqualify", "reinstate", "remove account",
         "load questions", "cancel reminder", "delete question", "reset SMS wording",
         "reset email wording"]


@pytest.fixture
def action(request, client, load_bank, make_participant):
    """The action named by the test's parameter, its world ready, the organizer logged in:
    (Action, world, its URL)."""
    chosen = actions(client, load_bank, make_participant)[request.param]
    login(client)  # first: the organizer's account is made when there is no account yet
    world = chosen.prepare()
    return chosen, world, chosen.url.format(**world)


def audited() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEntry))


@pytest.mark.parametrize("action", NAMES, indirect=True)
def test_a_plain_post_asks_first_and_its_yes_acts_once(client, action):
    chosen, world, url = action
    token = csrf_from(client.get(chosen.page.format(**world)).get_data(as_text=True))
    before, entries = snapshot(), audited()

    asked = client.post(url, data={"csrf_token": token, **(chosen.form or {})})
    page = text(asked)
    assert asked.status_code == 200 and "Are you sure?" in page
    assert chosen.question(world) in page
    assert "Nothing has happened yet." in page
    assert snapshot() == before and audited() == entries  # nothing written, nothing audited
    assert not chosen.done(world)
    form = next(f for f in forms_of(asked.get_data(as_text=True)) if ["confirmed", "yes"]
                in f["fields"])
    assert form["action"] == url
    for name, value in (chosen.form or {}).items():  # the organizer's fields come along
        assert [name, value] in form["fields"]
    assert re.search(rf'<a class="button" href="{re.escape(chosen.back)}">Cancel</a>',
                     asked.get_data(as_text=True))

    answer = say_yes(client, asked)
    assert answer.status_code == 303, text(answer)
    assert chosen.done(world)
    assert audited() == entries + 1  # done once


@pytest.mark.parametrize("action", NAMES, indirect=True)
def test_an_htmx_post_acts_at_once(client, action):
    """htmx's own dialog asked already: the request does the action as it always did."""
    chosen, world, url = action
    token = csrf_from(client.get(chosen.page.format(**world)).get_data(as_text=True))
    entries = audited()
    answer = client.post(url, data=chosen.form or {},
                         headers={"HX-Request": "true", "X-CSRFToken": token})
    assert answer.status_code in (200, 303) and "Are you sure?" not in text(answer)
    assert chosen.done(world) and audited() == entries + 1


@pytest.mark.parametrize("action", NAMES, indirect=True)
def test_roles_and_csrf_are_checked_before_anything_is_asked(client, action):
    chosen, world, url = action
    db.session.add(AdminUser(username="viewer", role=Role.VIEWER, password_hash=PASSWORD_HASH))
    db.session.commit()
    token = log_in(client, Role.VIEWER)
    before = snapshot()
    refused = client.post(url, data={"csrf_token": token, **(chosen.form or {})})
    assert refused.status_code == 403 and "This needs the host role" in re.sub(
        r"<[^>]+>", "", text(refused))
    assert "Are you sure?" not in text(refused) and snapshot() == before

    login(client)
    forged = client.post(url, data={"csrf_token": "forged", **(chosen.form or {})})
    assert forged.status_code == 400 and "Are you sure?" not in text(forged)
    assert snapshot() == before


def test_end_rounds_page_counts_as_things_are_when_it_is_asked(
        client, load_bank, make_participant, run_jobs):
    """The dialog's numbers are the dashboard's, from when it was drawn; the page's are read at the
    post: a player pressed Start and the links went out in between."""
    load_bank()
    _players(make_participant, ("Lin", "Max", "Ada"))
    _open(client)
    login(client)
    dashboard = client.get("/admin/").get_data(as_text=True)
    assert "3 invited players haven&#39;t pressed Start yet (3 of them" in dashboard
    run_jobs()  # the links are sent
    press_start(client, db.session.scalar(select(FormLink.code).where(
        FormLink.participant_id == player("Lin").id)))
    asked = client.post("/admin/rounds/1/end", data={"csrf_token": csrf_from(dashboard)})
    assert asks.end_round(1, 2, 0) in text(asked)
    assert ("End round 1 now? 2 invited players haven't pressed Start yet (0 of them haven't had "
            "their link sent yet).") in text(asked)
    assert round_status(1) == "open"


def test_a_question_bank_uploaded_comes_along_as_its_text(client, load_bank, make_participant):
    login(client)
    token = csrf_from(client.get("/admin/").get_data(as_text=True))
    before = snapshot()
    asked = client.post("/admin/questions", content_type="multipart/form-data", data={
        "csrf_token": token, "yaml": "",
        "file": (io.BytesIO(SMALL_BANK.encode()), "bank.yaml", "text/yaml")})
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "The text of bank.yaml comes along" in text(asked)
    assert snapshot() == before
    (form,) = [f for f in forms_of(page) if ["confirmed", "yes"] in f["fields"]]
    assert ["yaml", SMALL_BANK] in form["fields"]  # the file's text, whole (a pasted one lost)
    assert "multipart" not in form["enctype"]
    answer = say_yes(client, asked, follow_redirects=True)
    assert "Question bank loaded" in text(answer)
    assert db.session.scalar(select(func.count()).select_from(Challenge)) == 2


def test_an_action_on_something_not_there_says_so_and_asks_nothing(client, load_bank):
    load_bank()
    login(client)
    token = csrf_from(client.get("/admin/").get_data(as_text=True))
    before = snapshot()
    missing = client.post("/admin/rounds/7/end", data={"csrf_token": token})
    assert missing.status_code == 404 and "There is no round 7" in text(missing)
    assert "Are you sure?" not in text(missing) and "Nothing was changed." in text(missing)
    nobody = client.post("/admin/participants/999/disqualify", data={"csrf_token": token})
    assert nobody.status_code == 404 and "Are you sure?" not in text(nobody)
    assert snapshot() == before


def test_a_file_the_page_cannot_carry_is_asked_for_again(app, client):
    """A confirmed action taking a file other than the bank: its page asks to choose it again
    rather than dropping it."""
    def took():
        from flask import request
        return f"got {request.files['sheet'].filename}"
    app.add_url_rule("/admin/test-sheet", "test_sheet", methods=["POST"], view_func=confirm_first(
        lambda: Asked("Send this sheet?", "Yes, send it", "/admin/"))(took))
    login(client)
    token = csrf_from(client.get("/admin/").get_data(as_text=True))
    asked = client.post("/admin/test-sheet", content_type="multipart/form-data", data={
        "csrf_token": token, "note": "hi", "sheet": (io.BytesIO(b"x"), "sheet.csv")})
    page = asked.get_data(as_text=True)
    assert "Choose sheet.csv again" in text(asked)
    assert re.search(r'<input type="file" name="sheet" required>', page)
    (form,) = [f for f in forms_of(page) if ["confirmed", "yes"] in f["fields"]]
    assert form["enctype"] == "multipart/form-data" and ["note", "hi"] in form["fields"]


# A form with hx-confirm, its opening tag (over several lines), in a template's source.
FORM_TAG = re.compile(r"<form\b[^>]*?hx-confirm=[^>]*>", re.S)


def confirmed_forms() -> list[tuple[str, str, str | None]]:
    """(template, the form's endpoint, the asks.py question its hx-confirm reads) for every form
    with hx-confirm."""
    found = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        source = path.read_text()
        tags = FORM_TAG.findall(source)
        assert len(tags) == source.count("hx-confirm="), f"{path}: hx-confirm outside a <form>"
        for tag in tags:
            (endpoint,) = re.findall(r"url_for\('([\w.]+)'", tag)
            asked = re.search(r'hx-confirm="\{\{ ask\.(\w+)\(', tag)
            found.append((str(path.relative_to(ROOT)), endpoint, asked and asked[1]))
    return found


def test_every_form_htmx_confirms_is_guarded_on_the_server_too(app):
    """A form whose dialog htmx asks (hx-confirm) posts to a route with @confirm_first (else a click
    before htmx ran skips the question), and its wording is quiz/web/asks.py's."""
    forms = confirmed_forms()
    assert len(forms) >= 9
    for template, endpoint, question in forms:
        view = app.view_functions[endpoint]
        assert getattr(view, "confirmed_by", None), f"{template}: {endpoint} has no @confirm_first"
        assert question and hasattr(asks, question), (
            f"{template}: {endpoint}'s hx-confirm is not one of quiz/web/asks.py's questions")


def test_the_guard_comes_after_the_role_check(app):
    """@confirm_first under @requires: the role's 403 before any question."""
    for endpoint in {endpoint for _, endpoint, _ in confirmed_forms()}:
        view = app.view_functions[endpoint]
        assert view.required_role == Role.HOST
        assert view.__wrapped__.confirmed_by and not hasattr(view.__wrapped__, "required_role")


def test_the_question_is_escaped_where_it_shows(client, load_bank, make_participant):
    """A player named like markup: the dialog's attribute and the page show the name as text."""
    load_bank()
    make_participant('Eve "<b>" O\'Neil')
    _open(client)
    login(client)
    page = client.get("/admin/participants").get_data(as_text=True)
    assert 'hx-confirm="Disqualify Eve &#34;&lt;b&gt;&#34; O&#39;Neil? They are out' in page
    eve = player('Eve "<b>" O\'Neil')
    asked = client.post(f"/admin/participants/{eve.id}/disqualify",
                        data={"csrf_token": csrf_from(page), "reason": "x"})
    assert "<b>" not in asked.get_data(as_text=True)
    assert asks.disqualify(eve.name) in text(asked)
