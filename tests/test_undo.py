"""Undo and fix: extend a round, reopen one closed by mistake (its elimination reversed exactly, no
result SMS), reinstate a player, results held back RESULTS_DELAY_SECONDS."""
from datetime import timedelta

import pytest
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from quiz import reconcile, stored_forms, tasks
from quiz.clock import utcnow
from quiz.extensions import db, get_queue
from quiz.models import AuditEntry, Challenge, FormLink, Message, Participant, Submission
from quiz.notify import RESULT_KINDS

from .helpers import csrf_from, login, start, submit, text

DELAYED = pytest.mark.config(RESULTS_DELAY_SECONDS=60)


def code_of(participant_id: int, number: int) -> str:
    return db.session.scalar(select(FormLink.code).join(Challenge).where(
        FormLink.participant_id == participant_id, Challenge.number == number))


def snapshot() -> dict:
    """The game's tables, row by row (every column), as the database holds them."""
    db.session.expire_all()
    return {model.__table__.name: db.session.execute(
        select(model.__table__).order_by(model.__table__.c.id)).all()
        for model in (Participant, FormLink, Submission, Challenge)}


def get_round(number: int) -> Challenge:
    db.session.expire_all()
    return db.session.scalar(select(Challenge).where(Challenge.number == number))


def result_messages() -> list[str]:
    return db.session.scalars(select(Message.kind).where(Message.kind.in_(RESULT_KINDS))).all()


@pytest.fixture
def played(client, load_bank, make_participant, api_headers, run_jobs):
    """Round 1 open with five players: four answered (two right, two less so), one didn't; a sixth
    disqualified during the round. Their stored forms and links are out."""
    load_bank()
    players = [make_participant(f"P{i}").id for i in range(6)]
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    picks = [[["S3"], ["RDS", "DynamoDB"]], [["S3"], ["RDS"]], [["EC2"], ["RDS", "DynamoDB"]],
             [["EC2"], ["RDS"]]]
    for pid, pick in zip(players, picks):
        start(client, code_of(pid, 1))
        submit(client, code_of(pid, 1), pick)
    from quiz.rounds import disqualify
    disqualify(db.session.get(Participant, players[5]), "two phones")
    db.session.commit()
    run_jobs()
    return players


@DELAYED
def test_reopen_after_end_round_restores_the_game_row_by_row_and_texts_no_one(
        client, api_headers, played, run_jobs):
    before = snapshot()
    ended = client.post("/api/admin/end-challenge/1", headers=api_headers).get_json()
    assert (ended["eliminated_unanswered"], ended["eliminated_ranked_out"]) == (1, 2)
    run_jobs()  # the forms not answered are filed under unanswered/
    closed = snapshot()
    assert closed != before
    assert get_round(1).results_due_at is not None
    reopened = client.post("/api/admin/reopen-challenge/1", headers=api_headers)
    assert reopened.status_code == 200, reopened.get_json()
    assert reopened.get_json() == {"challenge": 1, "status": "open", "reinstated": 3,
                                   "closes_at": None}
    after = snapshot()
    for table in before:
        assert after[table] == before[table], table
    run_jobs()
    assert tasks.send_results(get_round(1).id, None) == 0  # the results job, had it been due
    assert result_messages() == []
    assert stored_forms.drift([get_round(1).id]).clean  # forms back in forms/
    assert not stored_forms.drift([get_round(1).id]).expected["unanswered"]
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["start round", "end round", "reopen round"]
    assert "3 player(s) back in" in db.session.scalar(
        select(AuditEntry.detail).where(AuditEntry.action == "reopen round"))


@DELAYED
def test_results_wait_the_delay_after_a_close_then_go_out_once(
        client, api_headers, played, run_jobs):
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    challenge = get_round(1)
    assert abs((challenge.results_due_at - challenge.closed_at).total_seconds() - 60) < 0.01
    registry = ScheduledJobRegistry(queue=get_queue("notify"))
    jobs = [get_queue("notify").fetch_job(job_id) for job_id in registry.get_job_ids()]
    assert [job.func_name for job in jobs] == ["quiz.tasks.send_results"]
    when = registry.get_scheduled_time(jobs[0]).replace(tzinfo=None)
    assert abs((when - challenge.results_due_at).total_seconds()) < 1
    round_id = challenge.id
    run_jobs()
    assert tasks.send_results(round_id, None) == 0  # early: nothing yet
    assert reconcile.reconcile_messages()["results"] == 0
    assert result_messages() == []
    get_round(1).results_due_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    tasks.send_results(round_id, None)
    assert len(result_messages()) == 6  # the disqualified player's too
    assert tasks.send_results(round_id, None) == 0  # owed no more
    assert len(result_messages()) == 6


@DELAYED
def test_results_owed_whose_job_was_lost_are_sent_by_reconcile(client, api_headers, played):
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    get_round(1).results_due_at = utcnow() - timedelta(seconds=120)  # its job never ran
    db.session.commit()
    assert reconcile.reconcile_messages()["results"] == 1
    assert len(result_messages()) == 6
    assert get_round(1).results_due_at is None


@DELAYED
def test_a_close_after_a_reopen_is_not_texted_by_the_first_close_s_job(
        client, api_headers, played):
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    first = get_round(1)
    first.results_due_at = utcnow() - timedelta(seconds=1)  # the first close's job is due …
    db.session.commit()
    client.post("/api/admin/reopen-challenge/1", headers=api_headers)
    client.post("/api/admin/end-challenge/1", headers=api_headers)  # … but the round closed again
    assert tasks.send_results(first.id, None) == 0
    assert result_messages() == []


@DELAYED
@pytest.mark.parametrize("setup, status, code, words", [
    ("late", 409, "results_out", "results are out"),
    ("sent", 409, "results_out", "results are out"),
    ("next", 409, "next_started", "Round 2 has started since"),
    ("open", 409, "not_closed", "only a closed round can be reopened"),
    ("missing", 404, "no_such_round", "There is no round 7"),
])
def test_reopen_is_refused_once_it_would_undo_what_people_saw(
        client, api_headers, played, run_jobs, setup, status, code, words):
    number = 7 if setup == "missing" else 1
    if setup != "open":
        client.post("/api/admin/end-challenge/1", headers=api_headers)
    challenge = get_round(1)
    if setup == "late":
        challenge.closed_at -= timedelta(seconds=61)
    elif setup == "sent":
        challenge.results_due_at = utcnow()
        db.session.commit()
        tasks.send_results(challenge.id, None)
    elif setup == "next":
        client.post("/api/admin/start-challenge/2", headers=api_headers)
    db.session.commit()
    before = snapshot()
    answer = client.post(f"/api/admin/reopen-challenge/{number}", headers=api_headers)
    assert answer.status_code == status
    assert answer.get_json()["error"] == code and words in answer.get_json()["message"]
    assert snapshot() == before


def test_without_a_delay_results_are_out_at_once_and_the_round_stays_closed(
        client, api_headers, played, run_jobs):
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    run_jobs()
    assert len(result_messages()) == 6
    assert client.post("/api/admin/reopen-challenge/1", headers=api_headers).status_code == 409


def timed_round_2(client, api_headers, played, limit_left: float):
    """Round 1 played and closed, round 2 (60 s) open with `limit_left` seconds to go."""
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    client.post("/api/admin/start-challenge/2", headers=api_headers)
    challenge = get_round(2)
    challenge.closes_at = utcnow() + timedelta(seconds=limit_left)
    db.session.commit()
    return challenge


@DELAYED
def test_a_round_closed_by_its_time_is_reopened_only_with_more_time(
        client, api_headers, played):
    challenge = timed_round_2(client, api_headers, played, -5)
    assert tasks.close_expired_round(challenge.id) is True
    refused = client.post("/api/admin/reopen-challenge/2", headers=api_headers)
    assert refused.status_code == 409 and refused.get_json()["error"] == "time_up"
    bad = client.post("/api/admin/reopen-challenge/2", headers=api_headers, json={"seconds": 0})
    assert bad.status_code == 422 and "seconds" in bad.get_json()["fields"]
    assert get_round(2).is_closed
    done = client.post("/api/admin/reopen-challenge/2", headers=api_headers, json={"seconds": 90})
    assert done.status_code == 200, done.get_json()
    closes_at = get_round(2).closes_at
    assert abs((closes_at - utcnow()).total_seconds() - 90) < 5
    assert tasks.close_expired_round(challenge.id) is False  # not before its new time


def test_extend_moves_the_round_s_close_and_its_close_job_asks_again_later(
        client, api_headers, played):
    challenge = timed_round_2(client, api_headers, played, 30)
    was = challenge.closes_at
    answer = client.post("/api/admin/extend-challenge/2", headers=api_headers, json={"seconds": 60})
    assert answer.status_code == 200, answer.get_json()
    assert get_round(2).closes_at == was + timedelta(seconds=60)
    assert get_round(2).extra_seconds == 60
    assert "+60 s" in db.session.scalar(select(AuditEntry.detail)
                                        .where(AuditEntry.action == "extend round"))
    # The close job, firing at the old time, closes nothing and owes itself again, at the latest
    # for the new close.
    registry = ScheduledJobRegistry(queue=get_queue("default"))
    before = set(registry.get_job_ids())
    assert tasks.close_expired_round(challenge.id) is False
    assert get_round(2).is_open
    again = [registry.get_scheduled_time(get_queue("default").fetch_job(job_id))
             .replace(tzinfo=None) for job_id in set(registry.get_job_ids()) - before]
    assert len(again) == 1 and again[0] <= get_round(2).deadline(1.0) + timedelta(seconds=1)


@pytest.mark.parametrize("body", [{}, {"seconds": 0}, {"seconds": 3601}, {"seconds": "abc"},
                                  {"seconds": True}, {"seconds": 1.5}, {"seconds": None}])
def test_extend_refuses_a_bad_number_of_seconds(client, api_headers, played, body):
    timed_round_2(client, api_headers, played, 30)
    answer = client.post("/api/admin/extend-challenge/2", headers=api_headers, json=body)
    assert answer.status_code == 422
    assert "1 to 3600" in answer.get_json()["fields"]["seconds"]


@pytest.mark.parametrize("number, left, code", [(1, None, "no_time_limit"), (2, -1, "time_up"),
                                                (3, None, "no_such_round")])
def test_extend_refuses_a_round_it_cannot_give_time_to(client, api_headers, played, number, left,
                                                       code):
    if number == 2:
        timed_round_2(client, api_headers, played, left)
    answer = client.post(f"/api/admin/extend-challenge/{number}", headers=api_headers,
                         json={"seconds": 60})
    assert answer.get_json()["error"] == code
    assert answer.status_code == (404 if code == "no_such_round" else 409)


def test_extend_a_round_not_open_is_refused(client, api_headers, load_bank):
    load_bank()
    answer = client.post("/api/admin/extend-challenge/2", headers=api_headers,
                         json={"seconds": 60})
    assert answer.status_code == 409 and "only an open round" in answer.get_json()["message"]


def test_reinstate_brings_a_player_back_and_texts_them_the_open_round_s_link(
        client, api_headers, played, run_jobs):
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    client.post("/api/admin/start-challenge/2", headers=api_headers)
    run_jobs()
    out = played[4]  # sent nothing in round 1
    answer = client.post(f"/api/admin/participants/{out}/reinstate", headers=api_headers)
    assert answer.status_code == 200, answer.get_json()
    db.session.expire_all()
    player = db.session.get(Participant, out)
    assert (player.eliminated_in, player.elimination_reason) == (None, None)
    run_jobs()
    assert db.session.scalar(select(Message.status).where(
        Message.participant_id == out, Message.kind == "round_link",
        Message.challenge_id == get_round(2).id)) == "sent"
    again = client.post(f"/api/admin/participants/{out}/reinstate", headers=api_headers)
    assert again.status_code == 409 and "in the game already" in again.get_json()["message"]
    assert db.session.scalar(select(AuditEntry.detail).where(AuditEntry.action == "reinstate")) \
        == "P4 (was out in round 1: unanswered)"


def test_a_player_reinstated_after_playing_in_the_shadow_league_is_ranked_for_real(
        client, api_headers, played):
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    client.post("/api/admin/start-challenge/2", headers=api_headers)
    out = played[4]
    start(client, code_of(out, 2))
    assert submit(client, code_of(out, 2), [["4"]]).status_code == 303
    assert db.session.scalar(select(Submission.shadow).where(Submission.participant_id == out))
    client.post(f"/api/admin/participants/{out}/reinstate", headers=api_headers)
    client.post("/api/admin/end-challenge/2", headers=api_headers)
    db.session.expire_all()
    mine = db.session.scalar(select(Submission).where(Submission.participant_id == out))
    assert (mine.shadow, mine.rank) == (False, 1)
    assert db.session.get(Participant, out).eliminated_in is None  # the winner, in fact


def test_reinstate_is_refused_once_the_game_is_over_or_for_nobody(client, api_headers, played):
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    client.post("/api/admin/start-challenge/2", headers=api_headers)
    client.post("/api/admin/end-challenge/2", headers=api_headers)
    answer = client.post(f"/api/admin/participants/{played[5]}/reinstate", headers=api_headers)
    assert answer.status_code == 409 and answer.get_json()["error"] == "game_over"
    assert db.session.get(Participant, played[5]).elimination_reason == "disqualified"
    missing = client.post("/api/admin/participants/9999/reinstate", headers=api_headers)
    assert missing.status_code == 404


@DELAYED
def test_console_extends_reopens_and_reinstates(client, api_headers, played):
    login(client)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    page = client.get("/admin/").get_data(as_text=True)
    assert "Reopen round 1" in page
    reopened = client.post("/admin/rounds/1/reopen",
                           data={"csrf_token": csrf_from(page), "confirmed": "yes"},
                           follow_redirects=True)
    assert "Round 1 is open again: the 3 player(s)" in text(reopened)
    assert get_round(1).is_open
    again = client.post("/admin/rounds/1/reopen",
                        data={"csrf_token": csrf_from(page), "confirmed": "yes"},
                        follow_redirects=True)
    assert "Round not reopened: Round 1 is open" in text(again)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    client.post("/api/admin/start-challenge/2", headers=api_headers)
    page = client.get("/admin/").get_data(as_text=True)
    assert "Reopen round 1" not in page and "Give more time" in page
    extended = client.post("/admin/rounds/2/extend",
                           data={"csrf_token": csrf_from(page), "seconds": "30"},
                           follow_redirects=True)
    assert "it now closes" in text(extended) and "at the latest" in text(extended)
    refused = client.post("/admin/rounds/2/extend",
                          data={"csrf_token": csrf_from(page), "seconds": "0"},
                          follow_redirects=True)
    assert "1 to 3600" in text(refused)
    participants = client.get("/admin/participants").get_data(as_text=True)
    back = client.post(f"/admin/participants/{played[5]}/reinstate",
                       data={"csrf_token": csrf_from(participants), "confirmed": "yes"},
                       follow_redirects=True)
    assert "P5 is back in the game." in text(back)
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions.count("reopen round") == 1 and "extend round" in actions
    assert actions[-1] == "reinstate"


def test_end_round_confirmation_counts_players_not_started_or_not_sent(
        client, load_bank, make_participant, api_headers, run_jobs):
    load_bank()
    players = [make_participant().id for _ in range(4)]
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    run_jobs()  # four links sent
    start(client, code_of(players[0], 1))
    db.session.execute(db.update(Message).where(Message.participant_id == players[1])
                       .values(status="queued"))
    db.session.commit()
    login(client)
    page = text(client.get("/admin/"))
    assert ("3 invited players haven't pressed Start yet (1 of them hasn't had their link sent "
            "yet)") in page
