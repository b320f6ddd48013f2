"""Check-in (kiosk, badge, CHECKIN_REQUIRED) and the help desk, over HTTP with the test client."""
import html

import pytest
from sqlalchemy import func, select

from quiz.extensions import db
from quiz.models import CHECKIN_ALPHABET, FormLink, HelpRequest, Message, Participant

from .helpers import csrf_from, login, start, submit, token_field


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def link_code(participant_id: int, number: int) -> str:
    return db.session.scalar(select(FormLink.code).where(FormLink.participant_id == participant_id,
                                                         FormLink.challenge_id == number))


@pytest.fixture
def kiosk(client):
    """A logged-in organizer at the kiosk; returns a function posting a code with the page's
    token."""
    login(client)
    token = csrf_from(client.get("/admin/checkin").get_data(as_text=True))

    def post(code, **headers):
        return client.post("/admin/checkin", data={"csrf_token": token, "code": code},
                           headers=headers)
    return post


class Player:
    """A participant's ids and codes, usable after the session that loaded them is gone (jobs end
    it)."""

    def __init__(self, participant: Participant):
        self.id, self.checkin_code, self.report_code = (participant.id, participant.checkin_code,
                                                        participant.report_code)


def checked_in() -> dict:
    return dict(db.session.execute(select(Participant.id, Participant.checked_in_at)).all())


# --- check-in ------------------------------------------------------------------------------------

def test_every_player_gets_an_unguessable_checkin_code_on_their_page_and_badge(
        client, load_bank, make_participant):
    load_bank()
    players = [make_participant() for _ in range(20)]
    codes = {p.checkin_code for p in players}
    assert len(codes) == 20 and all(len(c) == 10 and set(c) <= set(CHECKIN_ALPHABET) for c in codes)
    p = players[0]
    page = text(client.get(f"/r/{p.report_code}?welcome=1"))
    assert "Your check-in code" in page and f"{p.checkin_code[:5]}-{p.checkin_code[5:]}" in page
    # The check-in QR holds the check-in code alone: no name, no link, not the report's credential.
    from quiz.qr import qr_svg
    card = page.split("checkin-card")[1].split("</section>")[0]
    assert (qr_svg(p.checkin_code) in card
            and qr_svg(f"http://quiz.test/r/{p.report_code}") not in card)
    badge = client.get(f"/r/{p.report_code}/badge")
    body = text(badge)
    assert badge.status_code == 200 and p.name in body and "Acme" in body and "<svg" in body
    assert "badge.css" in body and p.phone not in body and p.email not in body
    assert client.get("/r/" + "Z" * 22 + "/badge").status_code == 404


def test_kiosk_checks_in_by_typed_code_and_says_when_already_here(client, kiosk, load_bank,
                                                                  make_participant):
    load_bank()
    p = make_participant("Ada Lovelace", company="Analytical")
    # as a person might type it
    typed = f"{p.checkin_code[:5].lower()}-{p.checkin_code[5:]}".replace("0", "O")
    first = kiosk(typed)
    assert first.status_code == 200
    assert ("Checked in" in text(first) and "Ada Lovelace" in text(first)
            and "Analytical" in text(first))
    when = checked_in()[p.id]
    assert when is not None
    again = kiosk(p.checkin_code)
    assert again.status_code == 200 and f"Already checked in at {when:%H:%M}" in text(again)
    assert checked_in()[p.id] == when  # the first scan counts
    assert "1 of 1 checked in" in text(again)


def test_kiosk_answers_htmx_with_the_result_fragment(kiosk, load_bank, make_participant):
    load_bank()
    p = make_participant()
    fragment = text(kiosk(p.checkin_code, **{"HX-Request": "true"}))
    assert fragment.lstrip().startswith("<section id=\"kiosk-result\"") and "<html" not in fragment
    assert 'data-outcome="ok"' in fragment and 'id="kiosk-count"' in fragment


@pytest.mark.parametrize("code, status, message", [
    ("7KQ2M9XD4T", 404, "Unknown code"),
    ("", 422, "isn't a check-in code"),
    ("12345", 422, "isn't a check-in code"),
    ("<script>alert(1)</script>", 422, "isn't a check-in code"),
    ("X" * 5000, 422, "isn't a check-in code"),
    ("http://quiz.test/r/abcdefghijklmnopqrstuv", 422, "web link, not a check-in code"),
])
def test_kiosk_refuses_unknown_and_malformed_codes_and_changes_nothing(
        kiosk, load_bank, make_participant, code, status, message):
    load_bank()
    make_participant()
    before = checked_in()
    response = kiosk(code)
    assert response.status_code == status and message in text(response)
    assert "<script>alert" not in response.get_data(as_text=True)
    assert checked_in() == before


def test_kiosk_needs_login_and_csrf(client, load_bank, make_participant):
    load_bank()
    p = make_participant()
    assert client.get("/admin/checkin").status_code == 302
    assert client.post("/admin/checkin", data={"code": p.checkin_code}).status_code in (302, 400)
    login(client)
    response = client.post("/admin/checkin", data={"code": p.checkin_code})
    assert response.status_code == 400 and "security token" in text(response)
    assert checked_in()[p.id] is None


@pytest.mark.config(CHECKIN_REQUIRED=True)
def test_checkin_required_round_one_only_for_players_who_checked_in(
        client, kiosk, load_bank, make_participant, open_round, run_jobs):
    load_bank()
    here, away = (Player(make_participant(name)) for name in ("Here", "Away"))
    kiosk(here.checkin_code)
    open_round()
    run_jobs()
    texted = set(db.session.scalars(select(Message.participant_id)
                                    .where(Message.kind == "round_link")))
    assert texted == {here.id}
    page = client.get(f"/f/{link_code(away.id, 1)}")
    assert "Check in first" in text(page)
    refused = start(client, link_code(away.id, 1))
    assert (refused.status_code == 403
            and "only open to players who have checked in" in text(refused))
    assert db.session.scalar(select(FormLink.started_at)
                             .where(FormLink.code == link_code(away.id, 1))) is None
    assert start(client, link_code(here.id, 1)).status_code == 303
    # Checking in while round 1 is open: the link goes out then, and the round opens to them.
    kiosk(away.checkin_code)
    run_jobs()
    texted = set(db.session.scalars(select(Message.participant_id)
                                    .where(Message.kind == "round_link")))
    assert texted == {here.id, away.id}
    assert start(client, link_code(away.id, 1)).status_code == 303


@pytest.mark.config(CHECKIN_REQUIRED=True)
def test_checkin_required_concerns_round_one_only(client, kiosk, load_bank, make_participant,
                                                  api_headers, run_jobs, open_round):
    load_bank()
    players = [Player(make_participant()) for _ in range(2)]
    for p in players:
        kiosk(p.checkin_code)
    open_round()
    for p in players:
        start(client, link_code(p.id, 1))
        submit(client, link_code(p.id, 1), [["S3"], ["RDS", "DynamoDB"]])
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    open_round(2)
    run_jobs()
    survivor = db.session.scalar(select(Participant.id).where(Participant.eliminated_in.is_(None)))
    assert "Ready?" in text(client.get(f"/f/{link_code(survivor, 2)}"))


def test_without_the_setting_nobody_needs_to_check_in(client, load_bank, make_participant,
                                                      open_round, run_jobs):
    load_bank()
    p = Player(make_participant())
    open_round()
    run_jobs()
    assert db.session.scalar(select(func.count()).where(Message.kind == "round_link")) == 1
    assert start(client, link_code(p.id, 1)).status_code == 303


def test_migration_gives_players_registered_before_it_a_checkin_code(app):
    from flask_migrate import upgrade
    db.drop_all()
    upgrade(revision="0001")
    with db.engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO participant "
            "(name, email, phone, company, consent, report_code, created_at) "
            "VALUES ('Old', 'old@example.com', '+14155550999', '', true, "
            "'oldreportcode0000000000', '2026-11-22 10:00:00')")
    upgrade()
    code, when = db.session.execute(select(Participant.checkin_code,
                                           Participant.checked_in_at)).one()
    assert len(code) == 10 and set(code) <= set(CHECKIN_ALPHABET) and when is None


# --- help desk -----------------------------------------------------------------------------------

def ask(client, page_url, action_url, **data):
    """The page's help form sent (its token: the link's on a round page, else the session's)."""
    name, token = token_field(client.get(page_url).get_data(as_text=True))
    return client.post(action_url, data={name: token, **data})


def help_rows():
    return db.session.execute(select(HelpRequest.participant_id, HelpRequest.kind, HelpRequest.text,
                                     HelpRequest.status, HelpRequest.reply)
                              .order_by(HelpRequest.id)).all()


def test_help_request_round_trip(client, app, load_bank, make_participant, open_round):
    load_bank()
    p = make_participant("Mallory")
    open_round()
    code = link_code(p.id, 1)
    sent = ask(client, f"/f/{code}", f"/f/{code}/help", kind="no_sms",
               text="<b>Phone</b> lost\nsignal")
    assert sent.status_code == 303 and sent.headers["Location"].endswith(f"/f/{code}#help")
    page = text(client.get(f"/f/{code}"))
    assert "with the help desk" in page and "Waiting for the help desk" in page
    # The console lists it, markup escaped.
    # (One test client for both: requests share the test's app context, where Flask-WTF caches the
    # CSRF token, so a second client would get the first one's token. The browser test uses two.)
    organizer = client
    login(organizer)
    desk = organizer.get("/admin/help").get_data(as_text=True)
    assert ("&lt;b&gt;Phone&lt;/b&gt; lost" in desk and "<b>Phone</b>" not in desk
            and "Mallory" in desk)
    assert "Resend round 1 link" in desk
    # …and so does the frame the websocket pushes.
    from quiz.web.desk import live_help
    with app.test_request_context("/ws"):
        frame = live_help()
    assert 'id="help"' in frame and "&lt;b&gt;Phone" in frame and "csrf_token" not in frame
    request_id = db.session.scalar(select(HelpRequest.id))
    token = csrf_from(desk)
    answered = organizer.post(f"/admin/help/{request_id}/resolve",
                              data={"csrf_token": token, "reply": "Resent it: check your SMS."})
    assert answered.status_code == 303
    status = text(client.get(f"/f/{code}/help", headers={"HX-Request": "true"}))
    # answered: polling stops
    assert "Resent it: check your SMS." in status and "hx-get" not in status
    assert "Resent it: check your SMS." in text(client.get(f"/r/{p.report_code}"))
    again = organizer.post(f"/admin/help/{request_id}/resolve",
                           data={"csrf_token": token, "reply": "twice"})
    assert again.status_code == 409 and "already answered" in text(again)
    assert help_rows()[0].reply == "Resent it: check your SMS."


def test_staff_resend_the_link_from_the_help_desk(client, app, load_bank, make_participant,
                                                  open_round, run_jobs):
    load_bank()
    p = Player(make_participant())
    open_round()
    run_jobs()
    ask(client, f"/r/{p.report_code}", f"/r/{p.report_code}/help", kind="no_sms", text="")
    login(client)
    token = csrf_from(client.get("/admin/help").get_data(as_text=True))
    response = client.post(f"/admin/participants/{p.id}/resend/1",
                           data={"csrf_token": token, "back": "help"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/help")
    assert db.session.scalar(select(Message.status).where(  # their link, not their confirmation
        Message.participant_id == p.id, Message.kind == "round_link")) == "queued"


@pytest.mark.parametrize("data, status, message", [
    ({"kind": "other", "text": "x" * 501}, 422, "under 500 characters (it has 501)"),
    ({"kind": "other", "text": "   "}, 422, "Tell us what's wrong"),
    ({"kind": "refund", "text": "hi"}, 422, "Pick what the problem is"),
    ({"text": "no kind"}, 422, "Pick what the problem is"),
    ({"kind": "other", "text": "bad\u202eword"}, 422, "letters, digits and punctuation"),
])
def test_bad_help_requests_are_refused_with_what_to_fix(client, load_bank, make_participant, data,
                                                        status, message):
    load_bank()
    p = make_participant()
    for page, action in ((f"/r/{p.report_code}", f"/r/{p.report_code}/help"),
                         (f"/f/{link_code(p.id, 1)}", f"/f/{link_code(p.id, 1)}/help")):
        response = ask(client, page, action, **data)
        assert response.status_code == status and message in text(response)
        if data.get("text") and len(data["text"]) < 600 and "\u202e" not in data["text"]:
            # what was typed is kept
            assert data["text"].strip() in text(response) or not data["text"].strip()
    assert help_rows() == []


def test_help_needs_csrf_and_a_real_link(client, load_bank, make_participant):
    load_bank()
    p = make_participant()
    response = client.post(f"/r/{p.report_code}/help", data={"kind": "no_sms"})
    assert response.status_code == 400 and "security token" in text(response)
    token = csrf_from(client.get(f"/r/{p.report_code}").get_data(as_text=True))
    assert client.post("/f/" + "Q" * 22 + "/help",
                       data={"csrf_token": token, "kind": "no_sms"}).status_code == 404
    assert client.post("/r/" + "Q" * 22 + "/help",
                       data={"csrf_token": token, "kind": "no_sms"}).status_code == 404
    assert help_rows() == []


def test_a_player_cannot_flood_the_desk(client, load_bank, make_participant):
    load_bank()
    p = make_participant()
    for _ in range(3):
        assert ask(client, f"/r/{p.report_code}", f"/r/{p.report_code}/help",
                   kind="no_sms").status_code == 303
    fourth = ask(client, f"/r/{p.report_code}", f"/r/{p.report_code}/help", kind="no_sms")
    assert fourth.status_code == 429 and "3 questions waiting" in text(fourth)
    assert len(help_rows()) == 3


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_help_posts_are_rate_limited_per_link(client, load_bank, make_participant):
    load_bank()
    p = make_participant()
    token = csrf_from(client.get(f"/r/{p.report_code}").get_data(as_text=True))
    statuses = [client.post(f"/r/{p.report_code}/help",
                            data={"csrf_token": token, "kind": "bogus"}).status_code
                for _ in range(7)]
    assert statuses == [422] * 6 + [429]


def test_staff_reply_is_checked(client, load_bank, make_participant):
    load_bank()
    p = make_participant()
    ask(client, f"/r/{p.report_code}", f"/r/{p.report_code}/help", kind="submit_failed",
        text="It spun forever")
    login(client)
    token = csrf_from(client.get("/admin/help").get_data(as_text=True))
    request_id = db.session.scalar(select(HelpRequest.id))
    for reply, message in (("", "Write a reply"), ("y" * 501, "under 500 characters")):
        response = client.post(f"/admin/help/{request_id}/resolve",
                               data={"csrf_token": token, "reply": reply})
        assert response.status_code == 422 and message in text(response)
    assert client.post(f"/admin/help/{request_id}/resolve", data={"reply": "ok"}).status_code == 400
    assert client.post("/admin/help/9999/resolve",
                       data={"csrf_token": token, "reply": "ok"}).status_code == 404
    assert help_rows()[0].status == "open" and help_rows()[0].reply is None


def test_shredding_personal_data_blanks_help_desk_texts(client, load_bank, make_participant):
    from quiz.privacy import shred_personal_data
    load_bank()
    p = make_participant()
    ask(client, f"/r/{p.report_code}", f"/r/{p.report_code}/help", kind="other",
        text="Call me on +1 415 555 0199")
    shred_personal_data(30, force=True)
    db.session.commit()
    assert [(row.text, row.reply) for row in help_rows()] == [("", "")]


def test_the_live_help_list_is_for_organizers_only(client):
    refused = client.get("/ws?topic=help", headers={"Origin": "http://localhost"})
    assert refused.status_code == 403 and "Log in to the console first" in text(refused)
