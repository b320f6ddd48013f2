"""Group commit (quiz/group_commit.py, quiz/submit_store.py): submissions posted at once are stored
by one writer in few transactions, each exactly once, each request answered once its row is
committed; a failed batch stores nothing and every request in it hears so; a refused one stores
nothing.

The requests run on gevent greenlets in this process, through Flask's test client, with the
process's writer switched on as under gunicorn's gevent workers: a request runs until it waits for
its row, so the requests posted together meet in the writer's same batch.
"""
import html
import sqlite3
from dataclasses import replace

import gevent
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy import event, func, select, update

from quiz.clock import utcnow
from quiz.effects import Drain, pending_key
from quiz.extensions import db, get_redis, state
from quiz.models import Challenge, FormLink, Participant, RoundStatus, Submission
from quiz.submit_store import DUPLICATE, Answered, insert_rows

from .helpers import POSTGRES_URL, answer_form, start, text

PICKS = {"Which service stores objects?": ["S3"], "Which are databases?": ["RDS", "DynamoDB"]}


@pytest.fixture
def writer(app):
    """The app's submissions writer, batching as in a gevent web process."""
    writer = state(app).submit_writer
    writer.batched = True
    return writer


@pytest.fixture
def forms(app, client, load_bank, make_participant, open_round):
    """Twelve players with round 1 open and Start pressed: (code, submit URL, form data) each, all
    answers right."""
    load_bank()
    participants = [make_participant(f"Player {i}") for i in range(12)]
    open_round()
    made = []
    for participant in participants:
        code = db.session.scalar(select(FormLink.code).join(Challenge).where(
            FormLink.participant_id == participant.id, Challenge.number == 1))
        assert start(client, code).status_code == 303
        token, fields = answer_form(client, code)
        data = {"csrf_token": token}
        for (name, options), chosen in zip(fields.items(), PICKS.values()):
            data[name] = [options[c] for c in chosen]
        made.append((code, f"/f/{code}/submit", data))
    db.session.commit()
    return made


def post_at_once(client, posts: list[tuple[str, dict]]) -> list:
    """Every (url, data) posted on a greenlet of its own, all at once; their responses in order."""
    greenlets = [gevent.spawn(client.post, url, data=data) for url, data in posts]
    gevent.joinall(greenlets, raise_error=True)
    return [g.value for g in greenlets]


def stored() -> dict[int, int]:
    """Participant id → how many submission rows they have (what is committed now)."""
    db.session.rollback()
    return dict(db.session.execute(select(Submission.participant_id, func.count())
                                   .group_by(Submission.participant_id)).all())


def pending_forms() -> set[int]:
    round_id = db.session.scalar(select(Challenge.id).where(Challenge.number == 1))
    return {int(i) for i in get_redis().smembers(pending_key(Drain.ANSWERED_FORMS, round_id))}


def test_a_burst_with_repeats_is_stored_once_each_in_fewer_transactions(client, forms, writer):
    posts = [(url, data) for _, url, data in forms] + [(url, data) for _, url, data in forms[:3]]
    responses = post_at_once(client, posts)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 3 + [303] * 12  # the repeats: "already in"
    for response in responses:
        if response.status_code == 200:
            assert "Your answers are already in" in text(response)
    counts = stored()
    assert len(counts) == 12 and set(counts.values()) == {1}
    assert writer.batches < len(posts)
    # what each stored row owes went out after its commit: its form moves to answered/
    assert pending_forms() == set(counts)
    scores = db.session.scalars(select(Submission.score)).all()
    assert set(scores) == {3}  # scored as one at a time would: every answer right


def test_a_duplicate_in_the_same_batch_as_its_original_gets_the_duplicate_answer(
        client, forms, writer):
    _, url, data = forms[0]
    first, second = post_at_once(client, [(url, data), (url, data)])
    assert writer.batches == 1  # both in one transaction
    assert sorted([first.status_code, second.status_code]) == [200, 303]
    repeat = first if first.status_code == 200 else second
    assert "Your answers are already in. Only the first submission counts." in text(repeat)
    assert list(stored().values()) == [1]


def test_insert_rows_keeps_the_first_of_twins_and_refuses_a_row_already_stored(app, player,
                                                                               open_round):
    participant, _ = player
    open_round()
    round_id = db.session.scalar(select(Challenge.id).where(Challenge.number == 1))
    row = Answered(participant.id, round_id, utcnow(), {}, 1, 1, 2.0, False)
    outcomes = insert_rows([row, replace(row, score=0)])
    assert isinstance(outcomes[0], int) and outcomes[1] == DUPLICATE
    db.session.commit()
    assert insert_rows([replace(row, score=0)]) == [DUPLICATE]
    db.session.commit()
    assert db.session.scalar(select(Submission.score)) == 1


def test_a_batchs_rows_are_stored_as_given_by_one_statement_whatever_its_size(
        app, load_bank, make_participant, open_round):
    """Every column as the row had it; on PostgreSQL the same statement text for a batch of one
    and of three (one array a column: psycopg converts it once, the server prepares it once)."""
    load_bank()
    ids = [make_participant(f"Player {i}").id for i in range(4)]
    open_round()
    round_id = db.session.scalar(select(Challenge.id).where(Challenge.number == 1))
    when = utcnow().replace(microsecond=123456)
    rows = [Answered(i, round_id, when, {"7": ["a", "b"], "8": "ünï"}, i, 2, 1.25, i % 2 == 1)
            for i in ids]
    texts = []

    def seen(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT INTO SUBMISSION"):
            texts.append(statement)
    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        outcomes = insert_rows(rows[:1]) + insert_rows(rows[1:])
        db.session.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert all(isinstance(outcome, int) for outcome in outcomes)
    if db.engine.dialect.name == "postgresql":
        assert len(texts) == 2 and texts[0] == texts[1]
    db.session.expire_all()
    for row, outcome in zip(rows, outcomes):
        submission = db.session.get(Submission, outcome)
        assert (submission.participant_id, submission.challenge_id, submission.submitted_at,
                submission.answers, submission.score, submission.correct,
                submission.response_time, submission.shadow) == (
            row.participant_id, row.challenge_id, row.submitted_at, row.answers, row.score,
            row.correct, row.response_time, row.shadow)


def broken_constraint(rows):
    """The batch's last row names a player who doesn't exist: its foreign key refuses the INSERT."""
    return insert_rows([*rows[:-1], replace(rows[-1], participant_id=10**9)])


def broken_connection(rows):
    """The batch's rows written, then its database connection closed under it before the commit."""
    outcomes = insert_rows(rows)
    db.session.connection().connection.dbapi_connection.close()
    return outcomes


@pytest.mark.parametrize("failure", [broken_constraint, broken_connection])
def test_a_failing_batch_answers_every_request_with_an_error_and_stores_nothing(
        client, forms, writer, failure):
    insert = writer.write
    writer.write = failure
    responses = post_at_once(client, [(url, data) for _, url, data in forms])
    assert all(r.status_code in (500, 503) for r in responses), [r.status_code for r in responses]
    for response in responses:
        assert "Try again" in text(response) or "press the button again" in text(response)
    assert stored() == {} and pending_forms() == set()
    writer.write = insert  # the database is back: pressed again, each counts once
    assert [r.status_code for r in post_at_once(client, [(url, data) for _, url, data in forms])
            ] == [303] * len(forms)
    assert set(stored().values()) == {1} and len(stored()) == len(forms)


def test_refused_submissions_store_nothing_and_say_why(client, forms, writer):
    (_, url, data), (_, other_url, other_data) = forms[:2]
    unknown = {**data, next(k for k in data if k.startswith("q")): "0123456789abcdef"}
    bad, good = post_at_once(client, [(url, unknown), (other_url, other_data)])
    assert bad.status_code == 422 and "reload the page and choose again" in text(bad).lower()
    assert good.status_code == 303
    assert len(stored()) == 1
    db.session.execute(update(Challenge).values(status=RoundStatus.CLOSED, closed_at=utcnow()))
    db.session.commit()
    [closed] = post_at_once(client, [(url, data)])
    assert closed.status_code == 409 and "Round 1 is closed" in text(closed)
    assert len(stored()) == 1


def test_a_round_closed_between_the_check_and_the_batch_refuses_its_rows(client, forms, writer):
    """The close came after the players' checks passed, before their batch took the round's lock:
    the batch checks the round again, and stores none of them."""
    insert = writer.write

    def close_first(rows):
        db.session.execute(update(Challenge).values(status=RoundStatus.CLOSED,
                                                    closed_at=utcnow()))
        return insert(rows)

    writer.write = close_first
    responses = post_at_once(client, [(url, data) for _, url, data in forms[:4]])
    assert [r.status_code for r in responses] == [409] * 4
    assert all("Round 1 is closed: answers are no longer accepted." in html.unescape(
        r.get_data(as_text=True)) for r in responses)
    assert stored() == {}
    assert db.session.scalar(select(func.count()).select_from(Participant)) == 12


# Registrations go through a group commit of their own (quiz/join_store.py).

def joiner(i: int, email: str | None = None, phone: str | None = None) -> dict:
    return {"name": f"Joiner {i}", "email": email or f"joiner{i}@example.com",
            "phone": phone or f"+1628{2_000_000 + i:07d}", "consent": True}


@pytest.fixture
def join_writer(app, load_bank):
    load_bank()
    db.session.commit()
    writer = state(app).join_writer
    writer.batched = True
    return writer


def register_at_once(client, bodies: list[dict]) -> list:
    greenlets = [gevent.spawn(client.post, "/api/register", json=body) for body in bodies]
    gevent.joinall(greenlets, raise_error=True)
    return [g.value for g in greenlets]


def test_registrations_at_once_each_get_their_player_and_links_in_one_transaction(
        client, join_writer, api_headers):
    bodies = [joiner(i) for i in range(10)]
    responses = register_at_once(client, bodies)
    assert [r.status_code for r in responses] == [201] * 10
    assert join_writer.batches == 1
    db.session.rollback()
    ids = [r.get_json()["user_id"] for r in responses]
    assert sorted(ids) == sorted(db.session.scalars(select(Participant.id)).all())
    for body, response in zip(bodies, responses):
        participant = db.session.get(Participant, response.get_json()["user_id"])
        assert (participant.email, participant.phone) == (body["email"], body["phone"])
        assert response.get_json()["report_url"].endswith(participant.report_code)
    # a link per round each, codes all different
    links = db.session.execute(select(FormLink.participant_id, FormLink.code)).all()
    assert len(links) == 20 and len({code for _, code in links}) == 20
    new_forms = {int(i) for i in get_redis().smembers(pending_key(Drain.NEW_FORMS))}
    assert new_forms == set(ids)
    # the links the admin token sees are this player's own
    again = client.post("/api/register", json=joiner(99), headers=api_headers).get_json()
    own = db.session.scalars(select(FormLink.code).where(
        FormLink.participant_id == again["user_id"])).all()
    assert {url.rsplit("/", 1)[1] for url in again["form_urls"].values()} == set(own)


def test_a_batch_of_registrations_reads_each_table_once(client, join_writer):
    """One statement a table for the whole batch: the rounds, who is taken, the players, their
    links, the confirmation's wording, the confirmation emails, not one of them per player."""
    from sqlalchemy import event
    statements = []
    listener = lambda *args: statements.append(" ".join(args[2].split()[:4]))  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        responses = register_at_once(client, [joiner(i) for i in range(10)])
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert [r.status_code for r in responses] == [201] * 10 and join_writer.batches == 1
    wording = [s for s in statements if "email_template" in s]
    assert len(wording) == 1, statements
    assert len(statements) <= 8, statements


def test_a_second_registration_in_the_same_batch_gets_the_duplicate_answer(client, join_writer):
    responses = register_at_once(client, [
        joiner(1), joiner(2, email="joiner1@example.com"), joiner(3, phone="+16282000001"),
        joiner(4)])
    assert [r.status_code for r in responses] == [201, 409, 409, 201]
    assert join_writer.batches == 1
    assert responses[1].get_json()["fields"] == {
        "email": "This email address is already registered. Your links come by SMS; ask the help "
                 "desk if they don't."}
    assert list(responses[2].get_json()["fields"]) == ["phone"]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Participant)) == 2
    assert db.session.scalar(select(func.count()).select_from(FormLink)) == 4


def test_registrations_once_a_round_closed_are_all_refused(client, join_writer):
    db.session.execute(update(Challenge).where(Challenge.number == 1)
                       .values(status=RoundStatus.CLOSED, closed_at=utcnow()))
    db.session.commit()
    responses = register_at_once(client, [joiner(1), joiner(2)])
    assert [r.get_json()["error"] for r in responses] == ["registration_closed"] * 2
    assert [r.status_code for r in responses] == [409, 409]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Participant)) == 0


def test_a_failing_registration_batch_answers_every_request_with_an_error(client, join_writer):
    insert = join_writer.write

    def broken(cleans):
        outcomes = insert(cleans)
        db.session.connection().connection.dbapi_connection.close()
        return outcomes

    join_writer.write = broken
    responses = register_at_once(client, [joiner(1), joiner(2)])
    assert all(r.status_code in (500, 503) for r in responses)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Participant)) == 0
    join_writer.write = insert
    assert [r.status_code for r in register_at_once(client, [joiner(1), joiner(2)])] == [201] * 2


def test_an_email_another_process_registered_meanwhile_gets_already_registered(
        app, client, join_writer):
    """Two web nodes take the same email at once: the later batch's insert breaks the unique key
    (IntegrityError); it is written once more, its read now sees the other node's row, and only
    that player is told "already registered" — the rest of the batch is stored."""
    insert, calls = join_writer.write, []

    def racing(cleans):
        calls.append(len(cleans))
        if len(calls) == 1:  # the other node commits first; our insert hits its row
            raise IntegrityError("INSERT INTO participant …", {},
                                 Exception("duplicate key value violates unique constraint"))
        with app.app_context():  # what the other node committed, in a connection of its own
            insert([joiner(7, email="joiner1@example.com", phone="+16282000777")])
            db.session.commit()
        return insert(cleans)

    join_writer.write = racing
    responses = register_at_once(client, [joiner(1), joiner(2)])
    assert [r.status_code for r in responses] == [409, 201] and calls == [2, 2]
    assert responses[0].get_json()["error"] == "already_registered"
    db.session.rollback()
    assert sorted(db.session.scalars(select(Participant.email)).all()) == [
        "joiner1@example.com", "joiner2@example.com"]
    join_writer.write = insert



def statements_of(operation) -> tuple[list[str], object]:
    """The SQL statements `operation()` ran (their first words), and its result."""
    from sqlalchemy import event
    statements = []
    listener = lambda *args: statements.append(" ".join(args[2].split()[:4]))  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        return statements, operation()
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)


def test_a_batch_whose_players_are_all_new_never_reads_the_players(client, join_writer):
    """Nobody's email or phone taken: the INSERT itself skips duplicates (ON CONFLICT DO NOTHING),
    so no read of the players comes first; their links and emails are one statement each."""
    statements, responses = statements_of(
        lambda: register_at_once(client, [joiner(i) for i in range(10)]))
    assert [r.status_code for r in responses] == [201] * 10 and join_writer.batches == 1
    assert not [s for s in statements if s.startswith("SELECT") and "participant" in s], statements
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert len(inserts) == 3, statements  # players, links, confirmation emails


def test_players_already_stored_are_skipped_and_told_which_field_is_taken(client, join_writer):
    """One batch: an email and a phone already stored (the INSERT skips them; one read says which),
    a new player stored beside them."""
    assert register_at_once(client, [joiner(1)])[0].status_code == 201
    statements, responses = statements_of(lambda: register_at_once(client, [
        joiner(2, email="joiner1@example.com"), joiner(3, phone="+16282000001"), joiner(4)]))
    assert [r.status_code for r in responses] == [409, 409, 201]
    assert [r.get_json()["error"] for r in responses[:2]] == ["already_registered"] * 2
    assert list(responses[0].get_json()["fields"]) == ["email"]
    assert list(responses[1].get_json()["fields"]) == ["phone"]
    assert join_writer.failed == 0 and join_writer.batches == 2
    assert len([s for s in statements if s.startswith("SELECT") and "participant" in s]) == 1
    db.session.rollback()
    assert sorted(db.session.scalars(select(Participant.email)).all()) == [
        "joiner1@example.com", "joiner4@example.com"]
    assert db.session.scalar(select(func.count()).select_from(FormLink)) == 4


def test_a_player_turned_away_only_for_a_skipped_rows_phone_is_stored(client, join_writer):
    """The first row of a batch is skipped (its email is stored already); the second shares only
    its phone with that first row, and nobody stored has that phone: the second is registered, as
    if the first had never been in the batch."""
    assert register_at_once(client, [joiner(1)])[0].status_code == 201
    responses = register_at_once(client, [
        joiner(2, email="joiner1@example.com", phone="+16282000555"),
        joiner(3, phone="+16282000555"), joiner(4, phone="+16282000555")])
    assert [r.status_code for r in responses] == [409, 201, 409]
    assert list(responses[0].get_json()["fields"]) == ["email"]
    assert list(responses[2].get_json()["fields"]) == ["phone"]
    assert join_writer.batches == 2 and join_writer.failed == 0
    db.session.rollback()
    assert db.session.scalar(select(Participant.email).where(
        Participant.phone == "+16282000555")) == "joiner3@example.com"

def test_a_clash_of_random_codes_writes_the_batch_again_not_already_registered(
        client, join_writer, monkeypatch):
    """The INSERT skips a row for any taken unique key: one whose email and phone are free clashed
    on a random code (its check-in code here). Never "already registered": the batch is written
    once more, with fresh codes."""
    from quiz import join_store
    from quiz.models.players import new_checkin_code
    assert register_at_once(client, [joiner(1)])[0].status_code == 201
    db.session.rollback()
    taken = db.session.scalar(select(Participant.checkin_code))
    codes = iter([taken])
    monkeypatch.setattr(join_store, "new_checkin_code", lambda: next(codes, None)
                        or new_checkin_code())
    responses = register_at_once(client, [joiner(2), joiner(3)])
    assert [r.status_code for r in responses] == [201, 201]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Participant)) == 3


@pytest.mark.skipif(not POSTGRES_URL, reason="SQLite's write lock keeps other writers out")
def test_an_email_committed_by_another_process_during_the_batch_is_skipped_not_a_retry(
        app, client, join_writer):
    """Another web node commits the same email after this batch began, before its INSERT: the
    INSERT waits for it and skips that row (no unique-key error, no second write of the batch)."""
    from sqlalchemy import create_engine, event, text
    other, calls, insert = create_engine(POSTGRES_URL), [], join_writer.write

    def counted(cleans):
        calls.append(len(cleans))
        return insert(cleans)

    def other_node_first(_conn, _cursor, statement, *_args):
        if statement.startswith("INSERT INTO participant") and not getattr(other, "done", False):
            other.done = True
            with other.begin() as connection:
                connection.execute(text(
                    "INSERT INTO participant (name, email, phone, company, consent,"
                    " sponsor_consent, language, report_code, checkin_code, created_at,"
                    " confirmation_owed) VALUES ('Other', 'joiner1@example.com', '+16282000777',"
                    " '', true, false, 'en', 'other-node-code', 'OTHER00001', now(), false)"))

    join_writer.write = counted
    event.listen(db.engine, "before_cursor_execute", other_node_first)
    try:
        responses = register_at_once(client, [joiner(1), joiner(2)])
    finally:
        event.remove(db.engine, "before_cursor_execute", other_node_first)
        join_writer.write = insert
        other.dispose()
    assert [r.status_code for r in responses] == [409, 201]
    assert calls == [2] and join_writer.failed == 0
    db.session.rollback()
    assert sorted(db.session.scalars(select(Participant.email)).all()) == [
        "joiner1@example.com", "joiner2@example.com"]

@pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's write lock")
@pytest.mark.config(SQLITE_BUSY_TIMEOUT_MS=2000)
def test_the_writer_waits_for_sqlites_lock_without_holding_the_process(client, forms, writer):
    """Another process holds SQLite's write lock: the writer tries again between cooperative sleeps,
    so this process's other greenlets (here, the one that lets the lock go) keep running. In
    SQLite's busy handler the whole process would wait out the busy timeout, then a 503."""
    blocker = sqlite3.connect(db.engine.url.database, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    released = []

    def release_soon():
        gevent.sleep(0.2)  # the writer is waiting for the lock by now
        released.append(writer.batches)  # ran while the batch was still waiting
        blocker.execute("ROLLBACK")

    helper = gevent.spawn(release_soon)
    responses = post_at_once(client, [(url, data) for _, url, data in forms[:4]])
    helper.join()
    blocker.close()
    assert released == [0] and writer.failed == 0  # the first batch waited, and went in
    assert [r.status_code for r in responses] == [303] * 4
    assert len(stored()) == 4


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL's pool (SQLite's reads never yield)")
def test_a_rush_of_submit_reads_waits_for_pooled_connections(app, writer):
    """More submits reading at once than the pool keeps: the rest wait for a pooled connection
    instead of opening one past the pool (a new backend each, closed again on its return)."""
    from quiz.submit_read import reading as _reading
    pool, inside, most = db.engine.pool, [0], [0]

    def read():
        with app.app_context(), _reading() as connection:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            connection.exec_driver_sql("SELECT 1")
            gevent.sleep(0.05)  # a read that yields, as under gunicorn's gevent workers
            assert pool.overflow() <= 0
            inside[0] -= 1
    gevent.joinall([gevent.spawn(read) for _ in range(pool.size() + 5)], raise_error=True)
    assert most[0] == pool.size() - 2  # two kept for the writers


def test_the_writer_gathers_while_a_rush_keeps_arriving(writer):
    """The writer waits once more each time its wait brought more items (a rush still arriving,
    answered in large groups), and stops once a wait brought none, or the batch is full."""
    from quiz import group_commit
    arrivals, waits = [3, 2, 1], []

    def sleep(seconds):  # stands for the gevent sleep: requests queue meanwhile
        waits.append(seconds)
        for _ in range(arrivals.pop(0) if arrivals else 0):
            writer.queue.append(("item", None))
    writer.queue = [("item", None)]
    writer._gather(sleep)
    assert len(waits) == 4 and len(writer.queue) == 7  # three waits brought more, the last none
    writer.queue, waits[:] = [("item", None)], []
    flood = lambda _seconds: writer.queue.extend([("item", None)] * 100)  # noqa: E731
    writer._gather(flood)
    assert len(writer.queue) == group_commit.BATCH_MAX + 1  # full: no more waiting
