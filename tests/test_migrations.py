"""The committed migrations build exactly the schema the models describe."""
from datetime import datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, stamp, upgrade
from sqlalchemy import inspect, text

from quiz.extensions import db
from quiz.models import PARTICIPANT_FILLFACTOR, SUBMISSION_FILLFACTOR, Reminder

from .helpers import POSTGRES_URL


def test_migrations_match_the_models(app):
    db.drop_all()
    upgrade()
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert diff == []
    downgrade(revision="base")
    assert set(inspect(db.engine).get_table_names()) == {"alembic_version"}


def test_upgrade_keeps_each_closed_rounds_ranked_count_and_cut_line(app):
    """0006 stores at close what readers looked up by rank; rounds closed before it get them from
    their ranks."""
    db.drop_all()
    upgrade(revision="0005_sponsor_consent")
    rounds = [(1, "closed", 0.5, None), (2, "closed", 0.5, 2), (3, "closed", 0.3, None),
              (4, "open", 0.5, None)]
    ranked = {1: 7, 2: 3, 3: 0, 4: 0}  # round 3 closed with nobody ranked; round 4 is still open
    with db.engine.begin() as connection:
        for number, status, fraction, count in rounds:
            connection.execute(text("INSERT INTO challenge (id, number, title, keep_fraction, "
                                    "keep_count, scoring, status) "
                                    "VALUES (:n, :n, 'R', :f, :c, 'accuracy', :s)"),
                               {"n": number, "f": fraction, "c": count, "s": status})
        for pid in range(1, 8):
            connection.execute(text(
                "INSERT INTO participant (id, name, email, phone, company, consent, "
                "sponsor_consent, report_code, checkin_code, created_at) "
                "VALUES (:id, 'P', :email, :phone, '', true, false, :code, :code, :at)"),
                {"id": pid, "email": f"p{pid}@example.com", "phone": f"+1415555{pid:04d}",
                 "code": f"c{pid}", "at": datetime(2026, 11, 23)})
        for number, count in ranked.items():
            for rank in range(1, count + 1):
                connection.execute(text(
                    "INSERT INTO submission (participant_id, challenge_id, answers, score, "
                    "correct, response_time, submitted_at, rank, shadow) "
                    "VALUES (:pid, :c, '{}', :score, 0, :time, :at, :rank, false)"),
                    {"pid": rank, "c": number, "score": 10 - rank, "time": rank + 0.25,
                     "at": datetime(2026, 11, 23), "rank": rank})
    upgrade()
    with db.engine.connect() as connection:
        stored = connection.execute(text("SELECT number, ranked_count, cut_score, "
                                         "cut_response_time FROM challenge ORDER BY number")).all()
    # Round 1: ⌈7 × 0.5⌉ = 4 stayed, place 4 had 6 points in 4.25 s; round 2 kept a fixed 2 of 3.
    assert [tuple(row) for row in stored] == [(1, 7, 6, 4.25), (2, 3, 8, 2.25), (3, 0, None, None),
                                              (4, None, None, None)]
    names = {index["name"] for table in ("submission", "participant")
             for index in inspect(db.engine).get_indexes(table)}
    assert ("ix_submission_challenge_rank" not in names
            and "ix_participant_eliminated_in" not in names)
    downgrade(revision="0005_sponsor_consent")
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM submission")).scalar() == 10


@pytest.mark.skipif(not POSTGRES_URL,
                    reason="needs PostgreSQL (bin/with-postgres): fillfactor is PostgreSQL's")
def test_the_tables_the_close_updates_leave_room_in_each_page(app):
    """Built by create_all (as in tests) or by the migrations, the same free space per page."""
    query = text("SELECT relname, reloptions FROM pg_class "
                 "WHERE relname IN ('submission', 'participant')")
    expected = {"submission": [f"fillfactor={SUBMISSION_FILLFACTOR}"],
                "participant": [f"fillfactor={PARTICIPANT_FILLFACTOR}"]}
    with db.engine.connect() as connection:
        assert dict(connection.execute(query).all()) == expected
    db.drop_all()
    upgrade()
    with db.engine.connect() as connection:
        assert dict(connection.execute(query).all()) == expected


def test_downgrades_keep_every_row_of_the_tables_they_rebuild(app, make_participant, load_bank):
    """SQLite's batch mode rebuilds a table to drop a column; with foreign keys on, dropping the old
    table would cascade into every row that points at it (submissions, links). The migrations run
    with them off."""
    load_bank()
    players = [make_participant() for _ in range(3)]
    challenge_id = db.session.execute(text("SELECT id FROM challenge WHERE number = 1")).scalar()
    for player in players:
        db.session.execute(text("INSERT INTO submission (participant_id, challenge_id, answers, "
                                "score, correct, response_time, submitted_at, shadow) "
                                "VALUES (:p, :c, '{}', 1, 1, 2.5, :at, false)"),
                           {"p": player.id, "c": challenge_id, "at": datetime(2026, 11, 23)})
    db.session.commit()
    counts = ("SELECT (SELECT count(*) FROM participant), (SELECT count(*) FROM form_link), "
              "(SELECT count(*) FROM submission)")
    before = tuple(db.session.execute(text(counts)).one())
    db.session.remove()
    # the fixture's create_all built the head schema: say so, as `flask db upgrade` would
    stamp(revision="heads")
    downgrade(revision="0001")
    with db.engine.connect() as connection:
        assert tuple(connection.execute(text(counts)).one()) == before
        assert before[2] == 3


def test_players_shredded_before_the_marker_are_marked_and_no_one_else(app):
    """0010 marks who an earlier shred replaced by its phone placeholder (no typed phone looks
    like it), not by an email anyone may register."""
    db.drop_all()
    upgrade(revision="0009_fair_sessions")
    with db.engine.begin() as connection:
        for pid, email, phone in ((1, "shredded-1@invalid", "shredded-1"),
                                  (2, "shredded-sam@example.com", "+14155550102")):
            connection.execute(text(
                "INSERT INTO participant (id, name, email, phone, company, consent, "
                "sponsor_consent, report_code, checkin_code, created_at) "
                "VALUES (:id, 'P', :email, :phone, '', true, false, :code, :code, :at)"),
                {"id": pid, "email": email, "phone": phone, "code": f"c{pid}",
                 "at": datetime(2026, 11, 23)})
    upgrade()
    with db.engine.connect() as connection:
        marked = connection.execute(text("SELECT id, shredded_at IS NOT NULL FROM participant "
                                         "ORDER BY id")).all()
    assert [tuple(row) for row in marked] == [(1, True), (2, False)]


@pytest.mark.config(LANGUAGES="en,de,es", DEFAULT_LANGUAGE="de")
def test_wording_edited_before_languages_becomes_the_default_languages_version(app):
    """0019 keys the organizer's SMS and email wording by (kind, language): what was edited before
    is the event's DEFAULT_LANGUAGE version; down again, only that version is kept."""
    db.drop_all()
    upgrade(revision="0018_participant_language")
    with db.engine.begin() as connection:
        connection.execute(text("INSERT INTO message_template (kind, body) "
                                "VALUES ('round_link', 'Runde {number}: {link}')"))
        connection.execute(text("INSERT INTO email_template (kind, subject, text, html) "
                                "VALUES ('results', 'S', 'T {{ unsubscribe }}', "
                                "'H {{ unsubscribe }}')"))
        connection.execute(text("INSERT INTO reminder (id, text, send_at, status, created_at) "
                                "VALUES (1, 'Halle B', :at, 'scheduled', :at)"),
                           {"at": datetime(2026, 12, 6, 14)})
    upgrade(revision="0019_template_languages")
    with db.engine.begin() as connection:
        # a reminder from before: no text in other languages, everyone reads its text
        assert connection.execute(text("SELECT text FROM reminder")).scalar() == "Halle B"
        assert db.session.get(Reminder, 1).text_in("es") == "Halle B"
        db.session.rollback()
        assert connection.execute(text("SELECT kind, language, body FROM message_template")).all() \
            == [("round_link", "de", "Runde {number}: {link}")]
        assert connection.execute(text("SELECT kind, language FROM email_template")).all() \
            == [("results", "de")]
        # a version per language: the same kind in another language is a row of its own
        connection.execute(text("INSERT INTO message_template (kind, language, body) "
                                "VALUES ('round_link', 'es', 'Ronda {number}: {link}')"))
        connection.execute(text("INSERT INTO email_template (kind, language, subject, text, html) "
                                "VALUES ('results', 'es', 'S', 'T', 'H')"))
    for table in ("message_template", "email_template"):
        assert inspect(db.engine).get_pk_constraint(table)["constrained_columns"] == \
            ["kind", "language"]
    downgrade(revision="0018_participant_language")
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT kind, body FROM message_template")).all() == \
            [("round_link", "Runde {number}: {link}")]
        assert connection.execute(text("SELECT kind, subject FROM email_template")).all() == \
            [("results", "S")]
    for table in ("message_template", "email_template"):
        assert inspect(db.engine).get_pk_constraint(table)["constrained_columns"] == ["kind"]
    upgrade()
