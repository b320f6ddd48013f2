"""Personal data (export one person, shred everyone's after the event) and backups with a tested
restore."""
import json
import threading
import time
from datetime import timedelta

from sqlalchemy import func, select, text

from quiz.clock import utcnow
from quiz.extensions import db
from quiz.models import AuditEntry, Challenge, Message, Participant, Submission
from quiz.privacy import shred_personal_data

from .helpers import start, submit


def play_round_one(client, make_participant, api_headers, run_jobs):
    from quiz.models import FormLink
    players = [make_participant(f"Player {name}") for name in ("Ada", "Bo", "Cy")]
    ids = [p.id for p in players]
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    for pid in ids[:2]:
        code = db.session.scalar(select(FormLink.code).where(FormLink.participant_id == pid,
                                                             FormLink.challenge_id == 1))
        start(client, code)
        submit(client, code, [["S3"], ["RDS", "DynamoDB"]])
    run_jobs()
    return ids


def test_export_one_participant(runner, client, load_bank, make_participant, api_headers, run_jobs):
    load_bank()
    play_round_one(client, make_participant, api_headers, run_jobs)
    email = db.session.scalar(select(Participant.email).where(Participant.name == "Player Ada"))
    result = runner.invoke(args=["privacy", "export", email.upper()])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["participant"]["name"] == "Player Ada" and data["participant"]["email"] == email
    assert data["submissions"][0]["round"] == 1 and data["submissions"][0]["score"] == 3
    by_kind = {(m["channel"], m["kind"]): m for m in data["messages"]}
    assert sorted(by_kind) == [("email", "confirmation"), ("sms", "confirmation"),
                               ("sms", "round_link")]  # every message about them, by channel
    assert len(data["messages"]) == 3 and "/f/" in by_kind["sms", "round_link"]["body"]
    assert by_kind["email", "confirmation"]["subject"]
    missing = runner.invoke(args=["privacy", "export", "nobody@example.com"])
    assert missing.exit_code != 0 and "No participant registered" in missing.output


def test_shred_waits_for_the_event_end_and_the_retention_period(
        runner, client, load_bank, make_participant, api_headers, run_jobs):
    load_bank()
    play_round_one(client, make_participant, api_headers, run_jobs)
    refused = runner.invoke(args=["privacy", "shred", "--yes"])
    assert refused.exit_code != 0 and "not over yet" in refused.output
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    client.post("/api/admin/start-challenge/2", headers=api_headers)
    client.post("/api/admin/end-challenge/2", headers=api_headers)
    early = runner.invoke(args=["privacy", "shred", "--yes"])
    assert (early.exit_code != 0 and "kept until" in early.output
            and "RETENTION_DAYS=30" in early.output)
    assert db.session.scalar(select(func.count()).where(Participant.name.like("Player %"))) == 3
    assert shred_personal_data(30, now=utcnow() + timedelta(days=31)) == 3
    db.session.commit()


def test_shred_keeps_anonymous_results(runner, client, load_bank, make_participant, api_headers,
                                       run_jobs):
    load_bank()
    ids = play_round_one(client, make_participant, api_headers, run_jobs)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    scores_before = db.session.execute(
        select(Submission.participant_id, Submission.score, Submission.rank)
        .order_by(Submission.id)).all()
    report = db.session.scalar(select(Participant.report_code).where(Participant.id == ids[0]))
    result = runner.invoke(args=["privacy", "shred", "--force", "--yes"])
    assert result.exit_code == 0 and "3 participant(s) shredded" in result.output
    db.session.expire_all()
    people = db.session.scalars(select(Participant).order_by(Participant.id)).all()
    assert [(p.name, p.email, p.phone, p.company) for p in people] == [
        (f"Player {i}", f"shredded-{i}@invalid", f"shredded-{i}", "") for i in ids]
    assert db.session.execute(select(Submission.participant_id, Submission.score, Submission.rank)
                              .order_by(Submission.id)).all() == scores_before
    assert not db.session.scalar(select(func.count()).where(Message.body != ""))
    # the emails' subjects and HTML carried names too
    assert db.session.scalar(select(func.count()).where(Message.channel == "email"))
    assert not db.session.scalar(select(func.count()).where(
        db.or_(Message.subject.is_not(None), Message.html.is_not(None), Message.to != "")))
    assert client.get(f"/r/{report}").status_code == 404
    board = client.get("/api/leaderboard/1").get_json()["entries"]
    assert {e["name"] for e in board} == {f"Player {i}" for i in ids}


def test_backup_during_writes_and_restore(app, runner, client, load_bank, make_participant,
                                          api_headers, run_jobs, tmp_path):
    load_bank()
    play_round_one(client, make_participant, api_headers, run_jobs)
    stop = threading.Event()
    engine = db.engine

    def writer():  # the event goes on while the backup runs
        while not stop.is_set():
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO audit_entry (at, actor, action, detail) "
                                        "VALUES (:at, 'test', 'tick', '')"), {"at": utcnow()})
            time.sleep(0.005)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.2)
        result = runner.invoke(args=["backup", str(tmp_path / "during.bak")])
        assert result.exit_code == 0, result.output
    finally:
        stop.set()
        thread.join()
    db.session.execute(db.delete(Submission))
    db.session.execute(db.update(Challenge).values(title="damaged"))
    db.session.commit()
    restored = runner.invoke(args=["restore", str(tmp_path / "during.bak"), "--yes"])
    assert restored.exit_code == 0, restored.output
    db.session.remove()
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 2
    assert set(db.session.scalars(select(Challenge.title))) == {"Warm-up", "Second"}
    snapshot_ticks = db.session.scalar(select(func.count()).where(AuditEntry.action == "tick"))
    assert snapshot_ticks > 0  # taken mid-write, and consistent
    if db.engine.dialect.name == "sqlite":
        assert db.session.scalar(text("PRAGMA integrity_check")) == "ok"


def test_restore_refuses_a_missing_file(runner, tmp_path):
    result = runner.invoke(args=["restore", str(tmp_path / "nope.bak"), "--yes"])
    assert result.exit_code != 0 and "does not exist" in result.output


def test_export_holds_help_requests_photos_and_check_in(runner, client, load_bank,
                                                        make_participant, api_headers, run_jobs):
    from quiz.checkin import check_in
    from quiz.helpdesk import ask_for_help, resolve
    from quiz.models import PhotoAnswer, Question
    load_bank()
    ids = play_round_one(client, make_participant, api_headers, run_jobs)
    ada = db.session.get(Participant, ids[0])
    check_in(ada.checkin_code, utcnow())
    asked = ask_for_help(ada, "no_sms", "No text yet", utcnow())
    db.session.flush()
    resolve(asked, "Sent again", "desk1", utcnow())
    submission = db.session.scalar(select(Submission).where(Submission.participant_id == ada.id))
    question = db.session.scalar(select(Question).where(
        Question.challenge_id == submission.challenge_id))
    db.session.add(PhotoAnswer(submission_id=submission.id, question_id=question.id,
                               participant_id=ada.id, challenge_id=submission.challenge_id,
                               key="photos/challenge1/1-1.jpg"))
    db.session.commit()
    data = json.loads(runner.invoke(args=["privacy", "export", ada.email]).output)
    assert data["participant"]["checked_in_at"].endswith("Z")
    assert [(h["kind"], h["text"], h["reply"]) for h in data["help_requests"]] == [
        ("no_sms", "No text yet", "Sent again")]
    assert [(p["round"], p["question"], p["key"], p["status"]) for p in data["photos"]] == [
        (1, question.position, "photos/challenge1/1-1.jpg", "pending")]


def test_shred_takes_names_out_of_the_audit_log(runner, client, load_bank, make_participant,
                                                api_headers, run_jobs):
    from .helpers import csrf_from, login
    load_bank()
    ids = play_round_one(client, make_participant, api_headers, run_jobs)
    ada = db.session.get(Participant, ids[0])
    identity = (ada.name, ada.email, ada.phone)
    login(client)
    token = csrf_from(client.get("/admin/participants").get_data(as_text=True))
    client.post(f"/admin/participants/{ids[0]}/disqualify",
                data={"csrf_token": token, "reason": f"two phones ({ada.phone})",
                      "confirmed": "yes"})
    client.post(f"/admin/participants/{ids[1]}/resend/1", data={"csrf_token": token})
    # an entry written before entries said which player they name
    db.session.add(AuditEntry(actor="desk1", action="resend link", detail="Player Cy, round 1"))
    db.session.commit()
    named = db.session.scalars(select(AuditEntry.detail).where(
        AuditEntry.action.in_(["disqualify", "resend link"]))).all()
    assert any("Player Ada" in d and ada.phone in d for d in named)
    assert any("Player Bo" in d for d in named)
    result = runner.invoke(args=["privacy", "shred", "--force", "--yes"])
    assert result.exit_code == 0, result.output
    details = " ".join(db.session.scalars(select(AuditEntry.detail)))
    for personal in (*identity, "Player Bo", "Player Cy"):
        assert personal not in details
    assert f"Player {ids[0]} (round 1): two phones (Player {ids[0]})" in details


def test_a_real_email_starting_with_shredded_is_shredded_too(make_participant):
    from quiz.privacy import shred_personal_data
    make_participant("Sneaky Sam", email="shredded-sam@example.com")
    make_participant("Plain Pat")
    assert shred_personal_data(30, force=True) == 2
    db.session.commit()
    assert db.session.scalar(select(func.count()).where(Participant.name.like("%Sam%"))) == 0
    assert not db.session.scalar(select(func.count())
                                 .where(Participant.email.like("%@example.com")))
    assert shred_personal_data(30, force=True) == 0  # nobody left to shred
