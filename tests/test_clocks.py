"""Links before clocks: each player's time runs from their own Start, and a timed round closes
itself once every invited player's time is used up (quiz/clocks.py)."""
import shutil
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
import requests
import yaml
from sqlalchemy import select, update

from quiz import reconcile, tasks
from quiz.clock import utcnow
from quiz.scoring import speed_points
from quiz.extensions import db
from quiz.models import Challenge, FormLink, Message, Participant, Submission

from .helpers import choice_values, login, round_trips, start, text, token_field
from .players import DEMO_BANK, Api, answer_over_http, ready_phone

TIMED_BANK = """
challenges:
  - number: 1
    title: Warm-up
    time_limit_seconds: 60
    keep_fraction: 0.5
    questions:
      - text: Which service stores objects?
        choices: [EC2, S3, SQS]
        answer: S3
  - number: 2
    title: Second
    time_limit_seconds: 60
    scoring: speed
    questions:
      - text: 2 + 2?
        choices: ["3", "4", "5"]
        answer: "4"
"""
RIGHT = [["S3"]]


def submit(client, code, picks: list[list[str]]):
    """Post the picks through the link's question page: the stored form (its own token) once the
    worker made it, else the live page."""
    page = client.get(f"/f/{code}").get_data(as_text=True)
    name, token = token_field(page)
    data = {name: token}
    for (field, options), chosen in zip(choice_values(page).items(), picks):
        data[field] = [options[c] for c in chosen]
    return client.post(f"/f/{code}/submit", data=data)


def get_round(number: int) -> Challenge:
    db.session.expire_all()
    return db.session.scalar(select(Challenge).where(Challenge.number == number))


def link_of(participant_id: int, number: int = 1) -> FormLink:
    db.session.expire_all()
    return db.session.scalar(select(FormLink).join(Challenge).where(
        FormLink.participant_id == participant_id, Challenge.number == number))


def shift(number: int, seconds: float) -> None:
    """Move a round's opening and latest close `seconds` into the past (instead of sleeping)."""
    challenge = get_round(number)
    challenge.opened_at -= timedelta(seconds=seconds)
    challenge.closes_at -= timedelta(seconds=seconds)
    db.session.commit()


def age_link(participant_id: int, seconds: float, number: int = 1) -> None:
    """A player's Start and window, and their link SMS, `seconds` further in the past."""
    link = link_of(participant_id, number)
    if link.started_at:
        link.started_at -= timedelta(seconds=seconds)
        link.window_ends_at -= timedelta(seconds=seconds)
    message = db.session.scalar(select(Message).where(
        Message.participant_id == participant_id, Message.challenge_id == link.challenge_id))
    if message is not None and message.sent_at is not None:
        message.sent_at -= timedelta(seconds=seconds)
    db.session.commit()


@pytest.fixture
def timed(app, client, make_participant, api_headers):
    """The timed bank loaded and `n` players registered; round 1 opened. Returns the players."""
    from quiz.questions import apply_bank, parse_bank

    def open_with(n: int = 2, **before) -> list[SimpleNamespace]:
        apply_bank(parse_bank(TIMED_BANK))
        db.session.commit()
        # plain ids (a job run in this process ends the session the rows came from)
        players = [SimpleNamespace(id=make_participant(**before).id) for _ in range(n)]
        answer = client.post("/api/admin/start-challenge/1", headers=api_headers)
        assert answer.status_code == 200, answer.get_json()
        return players
    return open_with


@pytest.mark.config(ROUND_MAX_SECONDS=600)
def test_a_late_starter_gets_their_full_limit_and_is_ranked(client, timed, api_headers):
    (late,) = timed(1)
    shift(1, 65)  # the round opened 65 s ago: a round-wide 60 s clock would have run out
    code = link_of(late.id).code
    assert start(client, code).status_code == 303
    link = link_of(late.id)
    assert (link.window_ends_at - link.started_at).total_seconds() == 60
    assert "Your time" in text(client.get(f"/f/{code}"))
    assert submit(client, code, RIGHT).status_code == 303
    assert client.post("/api/admin/end-challenge/1", headers=api_headers).status_code == 200
    assert db.session.scalar(select(Submission.rank)) == 1


def test_opening_the_link_does_not_start_the_player_s_time(client, timed):
    (player,) = timed(1)
    page = text(client.get(f"/f/{link_of(player.id).code}"))
    assert "60 seconds from the moment you press Start" in page
    link = link_of(player.id)
    assert link.started_at is None and link.window_ends_at is None


def test_an_answer_after_the_player_s_own_time_is_refused_and_nothing_is_stored(client, timed):
    first, _ = timed(2)
    code = link_of(first.id).code
    start(client, code)
    age_link(first.id, 62)  # started 62 s ago: 60 s and the 1 s grace are up
    answer = submit(client, code, RIGHT)
    assert answer.status_code == 409
    assert "Your time for round 1 is up" in text(answer)
    assert db.session.scalar(select(Submission.id)) is None
    assert get_round(1).is_open  # the others play on
    assert "Time's up" in text(client.get(f"/f/{code}"))
    # Pressing Start again gives no new time.
    assert start(client, code).status_code == 409


def test_the_round_closes_itself_once_everyone_has_submitted(client, timed, run_jobs):
    players = timed(2)
    run_jobs()  # links sent (outbox)
    submit_first = link_of(players[0].id).code
    start(client, submit_first)
    submit(client, submit_first, RIGHT)
    run_jobs()  # the answered form is filed; one player still to answer
    assert get_round(1).is_open
    code = link_of(players[1].id).code
    start(client, code)
    submit(client, code, RIGHT)
    run_jobs()  # the drain sees everyone in: no waiting for the clock
    assert get_round(1).is_closed


def test_the_round_closes_itself_once_windows_and_start_windows_ran_out(client, timed, run_jobs):
    started, idle = timed(2)
    run_jobs()  # both links sent
    start(client, link_of(started.id).code)
    assert tasks.close_expired_round(get_round(1).id) is False
    age_link(started.id, 62)  # their own time ran out
    assert tasks.close_expired_round(get_round(1).id) is False  # the idle one's link: 60 s to start
    age_link(idle.id, 61)  # sent 61 s ago, never started
    assert tasks.close_expired_round(get_round(1).id) is True
    assert db.session.scalar(select(Participant.elimination_reason)
                             .where(Participant.id == idle.id)) == "unanswered"


def test_a_link_not_sent_yet_holds_the_round_open_until_its_latest_close(client, timed):
    timed(1)  # no worker: the link is still queued
    challenge = get_round(1)
    # limit + start window (the limit) + send time (no rate: none)
    assert (challenge.closes_at - challenge.opened_at).total_seconds() == 120
    shift(1, 100)
    assert tasks.close_expired_round(challenge.id) is False
    shift(1, 22)  # past its latest close (plus grace)
    assert tasks.close_expired_round(challenge.id) is True


@pytest.mark.config(ROUND_MAX_SECONDS=30, START_WINDOW_SECONDS=5, SMS_RATE_PER_SECOND=2)
def test_configured_round_max_and_start_window(client, timed, run_jobs):
    (late,) = timed(1)
    challenge = get_round(1)
    assert (challenge.closes_at - challenge.opened_at).total_seconds() == 30
    shift(1, 25)  # 5 s before the latest close: a player starting now gets what is left
    start(client, link_of(late.id).code)
    assert link_of(late.id).window_ends_at == get_round(1).closes_at


@pytest.mark.config(SMS_RATE_PER_SECOND=3)
def test_the_default_round_max_counts_the_links_send_time(client, timed):
    timed(30)
    challenge = get_round(1)
    assert (challenge.closes_at - challenge.opened_at).total_seconds() == 60 + 60 + 10


@pytest.mark.config(SHADOW_LEAGUE=True)
def test_shadow_league_players_do_not_hold_a_round_open(client, timed, api_headers, run_jobs):
    kept, dropped = timed(2)
    run_jobs()
    code = link_of(kept.id).code
    start(client, code)
    submit(client, code, RIGHT)
    assert client.post("/api/admin/end-challenge/1", headers=api_headers).status_code == 200
    assert client.post("/api/admin/start-challenge/2", headers=api_headers).status_code == 200
    run_jobs()
    assert link_of(dropped.id, 2) is not None  # invited to play on in the shadow league
    code = link_of(kept.id, 2).code
    start(client, code)
    submit(client, code, [["4"]])
    run_jobs()
    assert get_round(2).is_closed  # the shadow player's unstarted link held nothing open


@pytest.mark.config(CHECKIN_REQUIRED=True)
def test_players_held_back_by_check_in_do_not_hold_a_round_open(client, timed, run_jobs):
    here, away = timed(2)
    db.session.execute(update(Participant).where(Participant.id == here.id)
                       .values(checked_in_at=utcnow()))
    db.session.commit()
    run_jobs()
    code = link_of(here.id).code
    start(client, code)
    submit(client, code, RIGHT)
    run_jobs()
    assert get_round(1).is_closed


def test_extend_moves_running_windows_and_the_close_but_revives_no_one(
        client, timed, api_headers):
    running, ended, fresh = timed(3)
    for player in (running, ended):
        start(client, link_of(player.id).code)
    age_link(ended.id, 62)
    was = {p.id: link_of(p.id).window_ends_at for p in (running, ended)}
    closes = get_round(1).closes_at
    answer = client.post("/api/admin/extend-challenge/1", headers=api_headers, json={"seconds": 30})
    assert answer.status_code == 200, answer.get_json()
    assert link_of(running.id).window_ends_at == was[running.id] + timedelta(seconds=30)
    assert link_of(ended.id).window_ends_at == was[ended.id]  # not revived
    assert get_round(1).closes_at == closes + timedelta(seconds=30)
    start(client, link_of(fresh.id).code)
    link = link_of(fresh.id)
    assert (link.window_ends_at - link.started_at).total_seconds() == 90  # the longer limit
    assert submit(client, link_of(ended.id).code, RIGHT).status_code == 409


def test_speed_scoring_decays_over_the_player_s_own_window(client, timed, api_headers):
    (player,) = timed(1)
    shift(1, 110)  # 10 s left before the latest close: their window is cut to 10 s
    code = link_of(player.id).code
    start(client, code)
    age_link(player.id, 5)  # half of their window used
    get_round(1).scoring = "speed"
    db.session.commit()
    assert submit(client, code, RIGHT).status_code == 303
    link = link_of(player.id)
    window = (link.window_ends_at - link.started_at).total_seconds()
    assert link.window_ends_at == get_round(1).closes_at - timedelta(seconds=5)  # cut (then aged)
    assert window <= 10
    taken = db.session.scalar(select(Submission.response_time))
    assert db.session.scalar(select(Submission.score)) == speed_points(taken, window)
    assert speed_points(taken, window) < speed_points(taken, 60)


def test_reconcile_closes_a_complete_round_whose_job_was_lost(client, timed, run_jobs):
    (player,) = timed(1)
    run_jobs()
    age_link(player.id, 61)
    db.session.execute(update(Challenge).values(closes_at=utcnow() + timedelta(hours=1)))
    db.session.commit()
    assert reconcile.reconcile_messages()["closed"] == 1
    assert get_round(1).is_closed


def test_the_projector_shows_when_the_round_closes_itself_with_answered_and_playing(
        client, timed, run_jobs):
    players = timed(3)
    run_jobs()
    start(client, link_of(players[0].id).code)
    code = link_of(players[1].id).code
    start(client, code)
    submit(client, code, RIGHT)
    page = text(client.get("/display"))
    assert "<strong>1</strong> of 3 answered" in page
    assert "<strong>1</strong> playing now" in page
    # Everyone's link is sent: the last start window ends 60 s from now, the open windows sooner.
    countdown = int(page.split('id="round-closes" data-countdown="')[1].split('"')[0])
    assert 58 <= countdown <= 61


@pytest.mark.config(SMS_RATE_PER_SECOND=3)
def test_the_console_states_how_long_the_links_take_before_start_round(client, make_participant):
    from quiz.questions import apply_bank, parse_bank
    apply_bank(parse_bank(TIMED_BANK))
    db.session.commit()
    for _ in range(30):
        make_participant()
    login(client)
    page = text(client.get("/admin/"))
    assert "links to 30 players take ≈ 10 s at 3/s" in page
    assert "60 s each, from their Start" in page


# The acceptance test, on the real stack: gunicorn, the RQ worker sending through the
# outbox at 3 SMS a second.
PLAYERS = 30


@pytest.fixture
def throttled_stack(tmp_path, redis_url):
    import redis as redis_client

    from .live_fixtures import LiveStack
    redis_client.Redis.from_url(redis_url).flushall()
    stack = LiveStack(tmp_path, redis_url, SMS_RATE_PER_SECOND="3")
    try:
        yield stack.start()
    finally:
        stack.stop()


def test_the_last_player_to_get_a_link_still_has_their_full_time_and_is_ranked(
        throttled_stack, tmp_path):
    stack = throttled_stack
    bank = yaml.safe_load(DEMO_BANK.read_text())
    bank["challenges"][0]["time_limit_seconds"] = 10
    path = tmp_path / "ten-seconds.yaml"
    path.write_text(yaml.safe_dump(bank))
    for picture in DEMO_BANK.parent.glob("*.png"):  # the demo bank's pictures, beside it
        shutil.copy(picture, tmp_path)
    stack.flask("questions", "load", str(path))
    api = Api(stack.url)
    phones = {f"+1415555{n:04d}": api.register(f"Player {n}", n)["user_id"]
              for n in range(1, PLAYERS + 1)}
    api.start(1)
    # Links arrive at 3 a second: each player answers as theirs arrives, but the last.
    arrived: dict[str, str] = {}
    deadline = time.monotonic() + 60
    while len(arrived) < PLAYERS:
        assert time.monotonic() < deadline, f"only {len(arrived)} links arrived"
        for m in api.outbox():
            if m["kind"] == "round_link" and m["challenge"] == 1 and m["to"] not in arrived:
                arrived[m["to"]] = _link(m)
                if len(arrived) < PLAYERS:
                    answer_over_http(arrived[m["to"]], 1)
        time.sleep(0.2)
    last, link = list(arrived.items())[-1]
    phone, data = ready_phone(link, 1)
    started = time.monotonic()
    time.sleep(8.5)  # most of their 10 s, long after a round-wide clock would have run out
    response = phone.post(f"{link}/submit", data=data)
    assert response.status_code == 200 and "Answers in" in response.text, response.text[:2000]
    assert time.monotonic() - started < 10 + 1
    # Everyone is in: the round closes itself, and the last player is ranked.
    deadline = time.monotonic() + 30
    while (board := requests.get(f"{stack.url}/api/leaderboard/1").json()).get("status") \
            != "closed":
        assert time.monotonic() < deadline, board
        time.sleep(0.3)
    ranks = {e["user_id"]: e["place"] for e in board["entries"]}
    assert ranks[phones[last]] is not None
    mine = next(e for e in board["entries"] if e["user_id"] == phones[last])
    assert mine["response_time_seconds"] >= 8.5  # timed by the server, from their own Start
    assert len([place for place in ranks.values() if place]) == PLAYERS


def _link(message: dict) -> str:
    import re
    return re.search(r"(http://\S+/f/\S+)", message["body"]).group(1)


def test_start_and_extend_answer_with_the_planned_close_and_the_latest(
        client, load_bank, make_participant, api_headers):
    from datetime import datetime
    from quiz.questions import apply_bank, parse_bank
    apply_bank(parse_bank(TIMED_BANK))
    db.session.commit()
    make_participant()
    started = client.post("/api/admin/start-challenge/1", headers=api_headers).get_json()
    planned, latest = (datetime.fromisoformat(started[k].rstrip("Z"))
                       for k in ("closes_at", "latest_close_at"))
    opened = get_round(1).opened_at
    # Planned: the link still to send, then its start window (60 s); latest: limit + start window.
    assert abs((planned - opened).total_seconds() - 60) < 2
    assert abs((latest - opened).total_seconds() - 120) < 1
    extended = client.post("/api/admin/extend-challenge/1", headers=api_headers,
                           json={"seconds": 30}).get_json()
    assert abs((datetime.fromisoformat(extended["latest_close_at"].rstrip("Z")) - opened)
               .total_seconds() - 150) < 1


@pytest.mark.parametrize("setting", ["plain", "links sent 3 a second", "check-in", "one out",
                                     "no one"])
def test_a_round_s_opening_plan_is_the_plan_its_query_makes(app, make_participant, setting):
    """Start round plans the round's close from the invited count (clocks.opening_plan): what the
    query over the round's links plans at that moment."""
    from quiz import clocks, rounds
    from quiz.questions import apply_bank, parse_bank
    app.config.update(SMS_RATE_PER_SECOND=3 if setting == "links sent 3 a second" else 0,
                      CHECKIN_REQUIRED=setting == "check-in")
    apply_bank(parse_bank(TIMED_BANK))
    players = [make_participant() for _ in range(0 if setting == "no one" else 4)]
    if setting == "check-in":
        players[0].checked_in_at = utcnow()
    if setting == "one out":
        players[0].eliminated_in = 1
    db.session.commit()
    now = utcnow()
    opened = rounds.start_round(1, now)
    db.session.flush()
    assert clocks.invited_count(opened.challenge) == {"check-in": 1, "one out": 3,
                                                      "no one": 0}.get(setting, 4)
    assert opened.plan == clocks.plan(opened.challenge, now)


def test_start_challenge_reads_no_link_of_the_round_nor_anything_after_its_commit(
        client, make_participant, api_headers):
    """Its answer's planned close is the opening plan's, made in the transaction: PostgreSQL's
    trips end with the COMMIT, and none runs the query over the round's links (~0.1 s at 10,000
    players, twice before)."""
    from quiz.questions import apply_bank, parse_bank
    if db.engine.dialect.name != "postgresql":
        pytest.skip("counts PostgreSQL's round trips")
    apply_bank(parse_bank(TIMED_BANK))
    make_participant()
    db.session.commit()
    with round_trips(db.engine) as trips:
        answer = client.post("/api/admin/start-challenge/1", headers=api_headers)
    assert answer.status_code == 200 and answer.get_json()["closes_at"]
    assert trips[-1] == "COMMIT", trips
    assert not [trip for trip in trips if "FROM form_link" in trip and "count" in trip], trips


@pytest.mark.config(RESULTS_DELAY_SECONDS=60)
def test_a_round_ended_by_mistake_reopens_with_running_windows_as_they_were(
        client, timed, api_headers):
    playing, done = timed(2)
    for player in (playing, done):
        start(client, link_of(player.id).code)
    submit(client, link_of(done.id).code, RIGHT)
    ends = link_of(playing.id).window_ends_at
    assert client.post("/api/admin/end-challenge/1", headers=api_headers).status_code == 200
    assert submit(client, link_of(playing.id).code, RIGHT).status_code == 409
    reopened = client.post("/api/admin/reopen-challenge/1", headers=api_headers)
    assert reopened.status_code == 200, reopened.get_json()
    assert link_of(playing.id).window_ends_at == ends  # their time runs on, as it was
    assert submit(client, link_of(playing.id).code, RIGHT).status_code == 303


@pytest.mark.config(RESULTS_DELAY_SECONDS=60)
def test_a_round_whose_players_had_all_used_their_time_is_not_reopened(
        client, timed, api_headers):
    (player,) = timed(1)
    code = link_of(player.id).code
    start(client, code)
    submit(client, code, RIGHT)
    assert client.post("/api/admin/end-challenge/1", headers=api_headers).status_code == 200
    refused = client.post("/api/admin/reopen-challenge/1", headers=api_headers)
    assert refused.status_code == 409 and refused.get_json()["error"] == "time_up"
    assert "Reinstate players" in refused.get_json()["message"]
    assert get_round(1).is_closed
