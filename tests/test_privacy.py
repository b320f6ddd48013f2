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
    assert data["messages"][0]["kind"] == "round_link" and "/f/" in data["messages"][0]["body"]
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
