"""The console: login, start and end rounds with CSRF-protected forms, audit log."""
import html

import pytest

from sqlalchemy import select

from quiz.extensions import db
from quiz.models import AuditEntry, Challenge

from .helpers import SMALL_BANK, csrf_from, login, post_form, say_yes


def test_console_needs_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]


def test_wrong_password_is_refused(client):
    response = login(client, "nope")
    assert response.status_code == 401
    assert "don't match" in html.unescape(response.get_data(as_text=True))
    assert client.get("/admin/").status_code == 302


def test_organizer_runs_a_round_from_the_console(client, load_bank, make_participant):
    load_bank()
    make_participant("Lin")
    assert login(client).status_code == 303
    dashboard = client.get("/admin/").get_data(as_text=True)
    assert "Start round 1" in dashboard
    # without JavaScript: each button's confirmation page, then its Yes
    asked = client.post("/admin/rounds/1/start", data={"csrf_token": csrf_from(dashboard)})
    started = say_yes(client, asked, follow_redirects=True)
    assert "Round 1 is open" in started.get_data(as_text=True)
    again = client.post("/admin/rounds/1/start", follow_redirects=True,
                        data={"csrf_token": csrf_from(dashboard), "confirmed": "yes"})
    assert "already open" in again.get_data(as_text=True)
    asked = client.post("/admin/rounds/1/end", data={"csrf_token": csrf_from(dashboard)})
    ended = say_yes(client, asked, follow_redirects=True)
    assert "eliminations are done" in ended.get_data(as_text=True)
    assert db.session.scalar(select(Challenge.status).where(Challenge.number == 1)) == "closed"
    actions = [a.action for a in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == ["start round", "end round"]
    assert "end round" in client.get("/admin/").get_data(as_text=True)


def test_console_actions_need_csrf(client, load_bank):
    load_bank()
    login(client)
    response = client.post("/admin/rounds/1/start")
    assert response.status_code == 400
    assert db.session.scalar(select(Challenge.status).where(Challenge.number == 1)) == "draft"


def test_admin_create_command_sets_a_password(runner, client):
    result = runner.invoke(args=["admin", "create", "--username", "ops", "--password",
                                 "s3cret-pass"])
    assert result.exit_code == 0, result.output
    response = post_form(client, "/admin/login", "/admin/login",
                         {"username": "ops", "password": "s3cret-pass"})
    assert response.status_code == 303


def test_sms_panel_polls_while_sending_and_stops_when_done(client, load_bank, make_participant,
                                                           run_jobs):
    load_bank()
    for _ in range(3):
        make_participant()
    login(client)
    client.post("/admin/rounds/1/start",
                data={"csrf_token": csrf_from(client.get("/admin/").get_data(as_text=True)),
                      "confirmed": "yes"})
    preparing = client.get("/admin/rounds/1/sms").get_data(as_text=True)
    assert "preparing" in preparing and 'hx-trigger="every 1s"' in preparing
    run_jobs()
    done = client.get("/admin/rounds/1/sms").get_data(as_text=True)
    assert "3/3 sent" in done and "hx-trigger" not in done


def test_console_warns_when_the_send_rate_is_slow(app, client, load_bank, make_participant):
    load_bank()
    for _ in range(200):
        make_participant()
    app.config["SMS_RATE_PER_SECOND"] = 1
    login(client)
    assert "200 messages at 1/s ≈ 3 min" in html.unescape(
        client.get("/admin/").get_data(as_text=True))


@pytest.mark.parametrize("body, status, message", [
    ("Round {number}: {link}", 303, None),
    ("Round {number}", 422, "must contain {link}"),
    ("Round {nmber}: {link}", 422, "Unknown placeholder {nmber}"),
])
def test_organizer_edits_sms_wording(client, body, status, message):
    login(client)
    response = post_form(client, "/admin/messages", "/admin/messages/round_link", {"body": body})
    assert response.status_code == status
    page = html.unescape(client.get("/admin/messages").get_data(as_text=True) if status == 303
                         else response.get_data(as_text=True))
    if message:
        assert message in page and body in page  # the typed text is kept
    else:
        assert body in page


@pytest.mark.parametrize("fields, message", [
    ({"text": "", "send_at": "14:00"}, "Write what the reminder should say."),
    ({"text": "Hello", "send_at": "2pm"}, "Give the time as HH:MM"),
    ({"text": "Hello", "send_at": "2020-01-01T10:00"}, "Pick a time in the future."),
])
def test_bad_reminder_is_refused_inline(client, fields, message):
    from quiz.models import Reminder
    login(client)
    response = post_form(client, "/admin/messages", "/admin/reminders", fields)
    assert response.status_code == 422
    assert message in html.unescape(response.get_data(as_text=True))
    assert db.session.scalar(select(db.func.count()).select_from(Reminder)) == 0


def test_schedule_and_cancel_a_reminder_from_the_console(client):
    from quiz.models import Reminder
    login(client)
    response = post_form(client, "/admin/messages", "/admin/reminders",
                         {"text": "Round 2 at 14:00", "send_at": "23:59"}, follow_redirects=True)
    assert "Reminder scheduled" in response.get_data(as_text=True)
    reminder = db.session.scalar(select(Reminder))
    assert reminder.status == "scheduled"
    post_form(client, "/admin/messages", f"/admin/reminders/{reminder.id}/cancel",
              {"confirmed": "yes"})
    db.session.expire_all()
    assert db.session.get(Reminder, reminder.id).status == "cancelled"


def test_results_page_lists_who_is_out_and_why(client, load_bank, make_participant, api_headers):
    load_bank()
    make_participant("Ann")
    make_participant("Bob")
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    login(client)
    page = client.get("/admin/rounds/1/results").get_data(as_text=True)
    assert "Ann" in page and "Bob" in page and page.count("out: no answer") == 2


def test_search_participants_and_disqualify_with_a_reason(client, load_bank, make_participant,
                                                          api_headers):
    from quiz.models import Participant
    load_bank()
    cheat = make_participant("Carol Cheat", company="Shady Ltd").id
    make_participant("Dave Honest")
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    login(client)
    page = client.get("/admin/participants?q=shady").get_data(as_text=True)
    assert "Carol Cheat" in page and "Dave Honest" not in page
    token = csrf_from(page)
    refused = client.post(f"/admin/participants/{cheat}/disqualify",
                          data={"csrf_token": token, "reason": "  ", "confirmed": "yes"},
                          follow_redirects=True)
    assert "Say why" in html.unescape(refused.get_data(as_text=True))
    too_long = client.post(f"/admin/participants/{cheat}/disqualify",
                           data={"csrf_token": token, "reason": "x" * 201,
                                 "confirmed": "yes"}, follow_redirects=True)
    assert "up to 200 characters" in html.unescape(too_long.get_data(as_text=True))
    assert db.session.get(Participant, cheat).eliminated_in is None
    done = client.post(f"/admin/participants/{cheat}/disqualify",
                       data={"csrf_token": token, "reason": "two phones",
                             "confirmed": "yes"}, follow_redirects=True)
    assert "Disqualified." in done.get_data(as_text=True)
    db.session.expire_all()
    player = db.session.get(Participant, cheat)
    assert (player.eliminated_in, player.elimination_reason) == (1, "disqualified")
    assert db.session.scalar(select(AuditEntry.detail)
                             .where(AuditEntry.action == "disqualify")).endswith("two phones")


def test_resend_a_link_from_the_participants_page(client, load_bank, make_participant, api_headers,
                                                  run_jobs):
    from quiz.models import Message
    load_bank()
    player = make_participant("Erin").id
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    run_jobs()
    login(client)
    token = csrf_from(client.get("/admin/participants").get_data(as_text=True))
    response = client.post(f"/admin/participants/{player}/resend/1",
                           data={"csrf_token": token, "back": "participants"},
                           follow_redirects=True)
    assert "link is being sent again" in response.get_data(as_text=True)
    # her link message (not her confirmation)
    link = (Message.participant_id == player) & (Message.kind == "round_link")
    assert db.session.scalar(select(Message.status).where(link)) == "queued"
    run_jobs()
    db.session.expire_all()
    message = db.session.scalar(select(Message).where(link))
    assert (message.status, message.attempts) == ("sent", 1)


def test_load_questions_from_the_console(client):
    login(client)
    token = csrf_from(client.get("/admin/").get_data(as_text=True))
    bad = client.post("/admin/questions",
                      data={"csrf_token": token, "confirmed": "yes",
                            "yaml": SMALL_BANK.replace("answer: S3", "answer: S9")},
                      follow_redirects=True)
    assert ("line 9" in html.unescape(bad.get_data(as_text=True))
            and "Nothing was changed" in bad.get_data(as_text=True))
    assert db.session.scalar(select(db.func.count()).select_from(Challenge)) == 0
    good = client.post("/admin/questions", data={"csrf_token": token, "yaml": SMALL_BANK,
                                                         "confirmed": "yes"},
                       follow_redirects=True)
    assert ("added round 1" in good.get_data(as_text=True)
            and "Start round 1" in good.get_data(as_text=True))


def test_refused_bank_from_the_console_leaves_nothing_half_written(
        client, load_bank, make_participant, api_headers):
    from .conftest import SMALL_BANK
    load_bank()
    make_participant()
    assert client.post("/api/admin/start-challenge/1", headers=api_headers).status_code == 200
    login(client)
    # Round 2 (a draft) is left out, so it is deleted and flushed before round 1 (open)
    # refuses to change.
    round_one_only = SMALL_BANK.split("  - number: 2")[0].replace("Warm-up", "Renamed")
    refused = post_form(client, "/admin/", "/admin/questions",
                        {"yaml": round_one_only, "confirmed": "yes"}, follow_redirects=True)
    page = html.unescape(refused.get_data(as_text=True))
    assert ("The question bank was not loaded: round 1 is open" in page
            and "Nothing was changed." in page)
    db.session.expire_all()
    assert db.session.execute(select(Challenge.number, Challenge.title)
                              .order_by(Challenge.number)).all() == [(1, "Warm-up"), (2, "Second")]
    assert db.session.get(Challenge, 2).questions
    assert "load questions" not in db.session.scalars(select(AuditEntry.action)).all()


def test_live_console_frame_carries_no_session_token_and_the_header_token_works(
        app, client, load_bank):
    from quiz.web.admin import live_overview
    load_bank()
    with app.test_request_context("/ws"):
        frame = live_overview()
    assert 'id="live-overview"' in frame and 'id="rounds"' in frame and 'id="audit"' in frame
    assert "csrf_token" not in frame and "Start round 1" in frame
    login(client)
    token = csrf_from(client.get("/admin/").get_data(as_text=True))
    response = client.post("/admin/rounds/1/start", headers={
        "X-CSRFToken": token, "HX-Request": "true", "HX-Boosted": "true"})
    assert response.status_code == 303
    assert db.session.scalar(select(Challenge.status).where(Challenge.number == 1)) == "open"


def test_failed_list_and_retry_all_from_the_console(client, load_bank, make_participant,
                                                    api_headers, run_jobs):
    from quiz.models import Message
    load_bank()
    make_participant("Fay")
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    run_jobs()
    db.session.execute(db.update(Message).where(Message.kind == "round_link")
                       .values(status="failed", error="OptedOut: opted out"))
    db.session.commit()
    login(client)
    page = client.get("/admin/rounds/1/failed").get_data(as_text=True)
    assert "Fay" in page and "OptedOut: opted out" in page
    response = client.post("/admin/rounds/1/retry-failed", data={"csrf_token": csrf_from(page)},
                           follow_redirects=True)
    assert "queued again" in response.get_data(as_text=True)
    run_jobs()
    db.session.expire_all()
    assert db.session.scalar(select(Message.status).where(Message.kind == "round_link")) == "sent"


def test_console_shows_system_health(client):
    """Database, Redis, workers and queues in the console; no worker here, so it says what to
    start."""
    login(client)
    page = " ".join(html.unescape(client.get("/admin/").get_data(as_text=True)).split())
    assert 'id="system-health"' in page and "database ok" in page and "redis ok" in page
    panel = " ".join(html.unescape(client.get("/admin/health").get_data(as_text=True)).split())
    assert ("0 live workers" in panel and "forms queue: 0" in panel
            and "no live worker: start `python worker.py`" in panel)
    client.post("/admin/logout", data={"csrf_token": csrf_from(page)})
    assert client.get("/admin/health").status_code == 302
