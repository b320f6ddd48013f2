"""The submit's read (quiz/submit_read.py): through the driver (PostgreSQL's prepared statement,
sqlite3's own execute), the same row as SQLAlchemy's execute, and so the same page state as the
ORM's, in every state."""
from datetime import timedelta

import gevent
import pytest
from sqlalchemy import DateTime, bindparam, func, select
from sqlalchemy.exc import OperationalError

from quiz import answers
from quiz.clock import utcnow
from quiz.extensions import db, state
from quiz.models import Challenge, FormLink, Submission
from quiz.submit_read import PreparedRead, reader

from .helpers import POSTGRES_URL, answer_form

from .test_submit_path import (  # noqa: F401 (players: a fixture)
    close_round, code_of, doubled, eliminated, not_started, players, time_up)


def nothing(client, api_headers, code):
    return None


def state_both_ways(app, code: str) -> str:
    """The read's row both ways (the same values), and its state, which must be the ORM's."""
    db.session.rollback()
    read = answers._statements()["link"]
    connection = db.session.connection()
    assert read.driver == connection.dialect.driver  # through the driver on both
    prepared = read.first(connection, {"code": code})
    plain = connection.execute(read.statement, {"code": code}).first()
    assert tuple(prepared) == tuple(plain)
    assert prepared._asdict() == plain._asdict()
    assert [type(value) for value in prepared] == [type(value) for value in plain]
    _, link = answers._link(connection, read, code)
    now = utcnow()
    state = answers.state_of(link, now, app.config["SUBMIT_GRACE_SECONDS"])
    orm = db.session.scalar(select(FormLink).where(FormLink.code == code))
    assert answers.page_state(orm, now) == state
    return state


@pytest.mark.config(SHADOW_LEAGUE=False)
@pytest.mark.parametrize("arrange, state", [
    (nothing, answers.QUESTIONS),
    (not_started, answers.READY),
    (doubled, answers.SUBMITTED),
    (close_round, answers.CLOSED),
    (time_up, answers.TIME_UP),
    (eliminated, answers.ELIMINATED),
])
def test_the_prepared_read_gives_the_orms_state(app, client, players, api_headers, arrange,
                                                state):
    code = arrange(client, api_headers, players[0]) or players[0]
    assert state_both_ways(app, code) == state


@pytest.mark.config(SHADOW_LEAGUE=True)
def test_in_the_shadow_league(app, client, players, api_headers):
    code = eliminated(client, api_headers, players[0])
    assert state_both_ways(app, code) == answers.READY  # round 2, in the shadow league
    read = answers._statements()["link"]
    row, link = answers._link(db.session.connection(), read, code)
    assert link.shadow and row.eliminated_in == 1


@pytest.mark.config(CHECKIN_REQUIRED=True)
def test_before_checking_in(app, client, load_bank, make_participant, open_round):
    load_bank()
    participant = make_participant("Grace")
    open_round()
    assert state_both_ways(app, code_of(participant.id)) == answers.CHECK_IN


def test_an_unknown_code_reads_no_row(app, players):
    read = answers._statements()["link"]
    assert read.first(db.session.connection(), {"code": "Z" * 22}) is None


def test_a_failed_prepared_read_is_read_again_through_sqlalchemy(app, players, monkeypatch):
    """A driver error (a dropped connection) goes to SQLAlchemy's execute, which handles it as it
    always did: here the read succeeds the second way."""
    read = answers._statements()["link"]
    monkeypatch.setattr(read, "sql", "SELECT no_such_column FROM form_link")
    db.session.commit()
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        row = read.first(connection, {"code": players[0]})
    assert row is not None and row.number == 1


def test_literals_are_bound_and_binds_that_need_converting_go_through_sqlalchemy(app, players):
    """A statement's own literal values are bound by the driver path too; a bind whose type
    converts its value on the way in (a datetime on SQLite) is read through SQLAlchemy's execute,
    which converts it: both give SQLAlchemy's rows."""
    db.session.commit()
    literal = PreparedRead(
        select(FormLink.code, FormLink.challenge_id)
        .where(FormLink.code == bindparam("code"), FormLink.challenge_id == 1,
               FormLink.participant_id > 0), db.engine.dialect)
    converted = PreparedRead(
        select(FormLink.code).join(Challenge, Challenge.id == FormLink.challenge_id)
        .where(FormLink.code == bindparam("code"),
               Challenge.opened_at < bindparam("before", type_=DateTime)),
        db.engine.dialect)
    connection = db.session.connection()
    assert literal.driver == connection.dialect.driver
    assert converted.driver == (None if connection.dialect.name == "sqlite" else "psycopg")
    later = utcnow() + timedelta(days=1)
    for read, params in ((literal, {"code": players[0]}),
                         (converted, {"code": players[0], "before": later})):
        rows = read.all(connection, params)
        assert [tuple(row) for row in rows] == \
            [tuple(row) for row in connection.execute(read.statement, params)]
        assert len(rows) == 1 and rows[0].code == players[0]
    assert converted.all(connection, {"code": players[0], "before": later - timedelta(days=2)}) \
        == []


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL's group read (SQLite's reads never yield)")
def test_the_group_query_gives_each_code_the_row_of_its_own_read(app, client, players,
                                                                   api_headers):
    doubled(client, api_headers, players[1])
    db.session.commit()
    statements = answers._statements()
    codes = [players[0], players[1], "Z" * 22]
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        rows = {row.code: row for row in statements["links"].all(connection, {"values": codes})}
        for code in codes:
            one = statements["link"].first(connection, {"code": code})
            assert (tuple(rows[code])[:-1] if code in rows else None) == \
                (tuple(one) if one else None)
    assert rows[players[1]].submitted and not rows[players[0]].submitted


@pytest.fixture
def batched(app):
    state(app).submit_writer.batched = True  # as in a gevent web process


def submit_at_once(client, codes: list[str]) -> list:
    # each form first (its page's read, grouped too on PostgreSQL), then the submits together
    bodies = [answer_data(client, code) for code in codes]
    greenlets = [gevent.spawn(client.post, f"/f/{code}/submit", data=body)
                 for code, body in zip(codes, bodies)]
    gevent.joinall(greenlets, raise_error=True)
    return [g.value for g in greenlets]


def answer_data(client, code: str) -> dict:
    token, fields = answer_form(client, code)
    return {"csrf_token": token, **{name: list(options.values())[:1]
                                    for name, options in fields.items()}}


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL's group read (SQLite's reads never yield)")
def test_submits_at_once_read_their_links_in_one_query(app, client, players, batched):
    group = reader().group(answers._statements()["links"], "code")
    before = group.queries
    responses = submit_at_once(client, players + players[:1])  # a repeat among them
    assert group.queries == before + 1
    assert sorted(r.status_code for r in responses) == [200, 303, 303]
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 2


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL's group read (SQLite's reads never yield)")
def test_a_failed_group_query_lets_each_submit_read_alone(app, client, players, batched,
                                                         monkeypatch):
    group = reader().group(answers._statements()["links"], "code")

    def broken(connection, params):
        raise OperationalError("SELECT", params, Exception("server closed the connection"))
    monkeypatch.setattr(group.many, "all", broken)
    responses = submit_at_once(client, players)
    assert [r.status_code for r in responses] == [303, 303]
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 2


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL's group read (SQLite's reads never yield)")
def test_an_unknown_code_in_a_group_is_not_found(app, client, players, batched):
    responses = submit_at_once(client, [players[0], "Z" * 22])
    assert [r.status_code for r in responses] == [303, 404]
