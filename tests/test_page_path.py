"""GET /f/<code> answered before Flask when it is the stored form (quiz/web/page_path.py): byte for
byte what Flask gives, headers included, and Flask's page for every other state."""
import re
from contextlib import contextmanager

import pytest
from sqlalchemy import event, select, update
from werkzeug.test import Client

from quiz import stored_forms
from quiz.clock import utcnow
from quiz.extensions import db, state
from quiz.models import Challenge, FormLink, Participant
from quiz.web import page_path
from quiz.web.page_path import PageFastPath

from .helpers import POSTGRES_URL, press_start, round_one_code, round_trips


def fast_path(app) -> PageFastPath:
    wsgi = app.wsgi_app
    while not isinstance(wsgi, PageFastPath):
        wsgi = wsgi.wrapped
    return wsgi


def both(app, code: str, served_fast: bool, **headers):
    """The page through the fast path and through Flask alone: (status, headers, body) of each,
    and whether the fast path answered it itself."""
    fast = fast_path(app)
    flask_calls = []
    flask_app = fast.wrapped

    def counted(environ, start_response):
        flask_calls.append(environ["PATH_INFO"])
        return flask_app(environ, start_response)
    headers = {"X-Request-ID": "same-id", **headers}
    fast.wrapped = counted
    try:
        through_fast = Client(fast, use_cookies=False).get(f"/f/{code}", headers=headers)
    finally:
        fast.wrapped = flask_app
    through_flask = Client(flask_app, use_cookies=False).get(f"/f/{code}", headers=headers)
    assert (not flask_calls) == served_fast
    return [(r.status, [(name, unsigned(name, value)) for name, value in r.headers.items()],
             r.get_data()) for r in (through_fast, through_flask)]


def unsigned(name: str, value: str) -> str:
    """A session cookie's value without its signature and timestamp: two answers a second apart
    sign the same session differently. What the session holds is still compared."""
    if name != "Set-Cookie":
        return value
    return re.sub(r"^(session=\.?[^.;]*)\.[^;]*", r"\1.(signed)", value)


@pytest.fixture
def grace(app, client, storage, load_bank, make_participant, run_jobs, api_headers):
    """Grace with her stored forms, round 1 open: her round-1 code."""
    return round_one_code(client, api_headers, load_bank, make_participant, run_jobs)


def test_the_stored_form_is_served_before_flask_byte_for_byte(app, client, grace):
    press_start(client, grace)
    fast, flask = both(app, grace, served_fast=True)
    assert fast[1] == flask[1]
    assert fast == flask
    assert b'name="form_token"' in fast[2] and fast[0] == "200 OK"
    names = [name for name, _ in fast[1]]
    assert names == ["Content-Type", "Content-Length", "Vary", "Content-Security-Policy",
                     "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
                     "Cache-Control", "X-Request-ID"]
    assert "Set-Cookie" not in names


@pytest.mark.config(RATELIMIT_ENABLED=True)
def test_the_same_with_a_session_cookie_and_rate_limits_on(app, client, grace):
    client.get("/register")  # the client now holds a session (the form's CSRF token), as a phone
    press_start(client, grace)  # that registered through the web form
    cookie = client.get_cookie("session")
    assert cookie is not None
    fast, flask = both(app, grace, served_fast=True, Cookie=f"session={cookie.value}")
    assert fast == flask


def test_a_timed_round_s_timer_in_the_participant_s_language_or_the_phone_s(
        app, client, api_headers, storage, load_bank, make_participant, run_jobs, monkeypatch):
    from quiz.web import page_path
    moment = utcnow()
    monkeypatch.setattr(page_path, "utcnow", lambda: moment)  # both paths' timer: the same second
    load_bank()
    german, unset = make_participant("Grete"), make_participant("Ana")
    german.language, unset.language = "de", None
    db.session.commit()
    german, unset = german.id, unset.id
    run_jobs()
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    client.post("/api/admin/start-challenge/2", headers=api_headers)
    db.session.execute(update(Participant).values(eliminated_in=None))
    db.session.commit()
    for person, asked in ((german, "en"), (unset, "es")):
        code = db.session.scalar(select(FormLink.code).join(Challenge).where(
            FormLink.participant_id == person, Challenge.number == 2))
        db.session.execute(update(FormLink).where(FormLink.code == code).values(
            started_at=utcnow(), window_ends_at=utcnow().replace(microsecond=0) + (
                __import__("datetime").timedelta(seconds=60))))
        db.session.commit()
        fast, flask = both(app, code, served_fast=True, **{"Accept-Language": asked})
        assert fast == flask
        assert ("Deine Zeit" if person is german else "Tu tiempo").encode() in fast[2]


def is_row(statement: str) -> bool:
    """The fast path's row read (on SQLite through SQLAlchemy's execute, so its events see it)."""
    return statement.startswith("SELECT form_link.code, form_link.participant_id")


def is_objects(statement: str) -> bool:
    """The ORM's read of a link's objects (`links.find_round_page`)."""
    return "form_link.id" in statement and not is_row(statement)


@contextmanager
def link_reads(monkeypatch):
    """The link's reads meanwhile: the fast path's plain row (`links.page_row`, run through the
    driver on PostgreSQL) as "row", and the ORM's statements on form_link as "objects"; and every
    statement but the row's."""
    reads, statements = [], []
    row = page_path.page_row

    def counted(code):
        reads.append("row")
        return row(code)

    def listener(*args):
        if is_objects(args[2]):
            reads.append("objects")
        if not is_row(args[2]):
            statements.append(args[2])
    monkeypatch.setattr(page_path, "page_row", counted)
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield reads, statements
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
        monkeypatch.setattr(page_path, "page_row", row)


def test_the_start_page_stays_in_flask_with_the_links_read_twice(app, grace, monkeypatch):
    """A page the fast path hands on (the first Start page of a process: rendered and kept) reads
    the link twice: the fast path's plain row, then the view's objects. The pages it answers
    itself (most of the herd's) read it once, as a row, not through the ORM's load."""
    with link_reads(monkeypatch) as (reads, _):
        fast, flask = both(app, grace, served_fast=False)
    assert fast[0] == flask[0] == "200 OK" and b"Start" in fast[2]
    # its forms carry the link's token, not the session's (quiz/web/start_path.py)
    assert b'name="form_token"' in fast[2] and b'name="csrf_token"' not in fast[2]
    # through the fast path, then Flask alone (no look read: cached)
    assert reads == ["row", "objects", "objects"]
    with link_reads(monkeypatch) as (reads, _):
        both(app, grace, served_fast=True)  # now from the copy
    assert reads == ["row", "objects"]


@pytest.mark.parametrize("case", ["fragment", "shadow", "paused", "missing", "closed",
                                  "unknown", "head"])
def test_everything_else_goes_to_flask(app, client, api_headers, grace, storage, case):
    press_start(client, grace)
    headers, code = {}, grace
    if case == "fragment":
        headers = {"HX-Request": "true"}
    elif case == "shadow":
        app.config["SHADOW_LEAGUE"] = True
        db.session.execute(update(Participant).values(eliminated_in=0))
        db.session.commit()
    elif case == "paused":
        state(app).storage_down_until = __import__("time").monotonic() + 60
    elif case == "missing":
        storage.delete(stored_forms.form_key("forms", 1, db.session.scalar(
            select(FormLink.participant_id).where(FormLink.code == grace))))
    elif case == "closed":
        client.post("/api/admin/end-challenge/1", headers=api_headers)
    elif case == "unknown":
        code = "x" * 22
    if case == "head":
        fast = fast_path(app)
        response = Client(fast).head(f"/f/{code}")
        assert response.status_code == 200
        return
    fast, flask = both(app, code, served_fast=False, **headers)
    assert fast[0] == flask[0]
    if case == "unknown":
        assert fast[0].startswith("404")
    elif case in ("shadow", "paused", "missing"):
        assert b'name="csrf_token"' in fast[2]  # the live page's questions (the stored form: none)


def test_a_regenerated_form_is_served_afresh(app, client, grace, run_jobs):
    press_start(client, grace)
    participant_id = db.session.scalar(select(FormLink.participant_id)
                                       .where(FormLink.code == grace))
    assert b"Grace" in client.get(f"/f/{grace}").get_data()
    db.session.execute(update(Participant).values(name="Grace Hopper"))
    db.session.commit()
    stored_forms.regenerate([participant_id])
    assert b"Grace Hopper" in client.get(f"/f/{grace}").get_data()


def test_round_facts_are_kept_only_once_the_round_has_opened(app, load_bank, api_headers, client):
    from quiz.links import round_facts
    from .helpers import SMALL_BANK
    load_bank()
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == 1))
    assert round_facts(challenge).asked == 2
    load_bank(SMALL_BANK.replace("  - number: 2\n", "      - text: A third?\n"
                                 "        choices: [A, B]\n        answer: A\n  - number: 2\n", 1))
    db.session.expire_all()
    assert round_facts(challenge).asked == 3  # a draft's questions may change: read afresh
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    db.session.expire_all()
    assert round_facts(challenge).asked == 3
    assert (challenge.id, challenge.opened_at) in app.extensions["knockout.round_facts"]


@pytest.mark.parametrize("language", ["en", "de"])
def test_the_start_page_from_its_copy_is_the_page_a_render_gives(
        app, client, storage, load_bank, make_participant, api_headers, language):
    """Players' Start pages, whole and fragment: the first rendered and kept, the next ones from the
    copy with their own values: the same bytes as a render, names escaped; a name that is also a
    word of the page is never kept as a mark."""
    import re
    from quiz.web.page_cache import EXTENSION
    load_bank()
    names = ["Ada", "<Bob & 'Co'>", "Start", "Grace Hopper", "Ready?"]
    ids = [make_participant(name).id for name in names]
    db.session.execute(update(Participant).values(language=language))
    db.session.commit()
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    codes = [db.session.scalar(select(FormLink.code).join(Challenge).where(
        FormLink.participant_id == pid, Challenge.number == 1)) for pid in ids]

    def page(code, **headers):
        body = client.get(f"/f/{code}", headers=headers).get_data(as_text=True)
        # the session's CSRF token (the whole page's help form; the fragment's Start form carries
        # the link's own token, quiz/web/start_path.py)
        token = re.search(r'name="csrf_token" value="([^"]+)"', body)
        return body.replace(token.group(1), "TOKEN") if token else body
    for headers in ({}, {"HX-Request": "true"}):
        app.extensions.pop(EXTENSION, None)
        for code, name in zip(codes, names):
            from_copy = page(code, **headers)
            app.extensions.pop(EXTENSION, None)
            rendered = page(code, **headers)
            assert from_copy == rendered
            if not headers:
                assert __import__("html").escape(name, quote=False).replace(
                    "'", "&#39;") in rendered
            page(codes[0], **headers)  # the copy made again from the first player's page
        assert app.extensions[EXTENSION]


def test_after_end_round_the_pages_cost_one_query_fewer(app, client, load_bank, make_participant,
                                                        api_headers, monkeypatch):
    """After "End round" every waiting phone fetches its page: the round being the last comes with
    the link's query, and the winner is looked for only after the last round."""
    from .helpers import choice_values, token_field
    load_bank()
    ids = [make_participant(name).id for name in ("Grace", "Alan", "Ada")]
    code = {(pid, number): db.session.scalar(select(FormLink.code).join(Challenge).where(
        FormLink.participant_id == pid, Challenge.number == number))
        for pid in ids for number in (1, 2)}

    def answers_right(number):
        link = code[ids[0], number]
        press_start(client, link)
        page = client.get(f"/f/{link}").get_data(as_text=True)
        name, token = token_field(page)
        data = {name: token}
        for field, options in choice_values(page).items():
            data[field] = [value for label, value in options.items()
                           if label in ("S3", "RDS", "DynamoDB", "4")]
        assert client.post(f"/f/{link}/submit", data=data).status_code == 303

    client.post("/api/admin/start-challenge/1", headers=api_headers)
    answers_right(1)
    client.post("/api/admin/end-challenge/1", headers=api_headers)
    client.get("/register")  # the look, read once every 2 s a process
    client.get("/api/status")  # the shared status, computed once after the change
    # a closed round's page is the player's own: the fast path's row, then Flask's view reads the
    # link's objects (whether the round is the last comes with each), + her answers
    with link_reads(monkeypatch) as (reads, statements):
        mine = client.get(f"/f/{code[ids[0], 1]}", headers={"HX-Request": "true"})
    assert "through" in mine.get_data(as_text=True) and reads == ["row", "objects"]
    assert len(statements) == 2, statements  # the objects, her answers
    with link_reads(monkeypatch) as (reads, statements):
        out = client.get(f"/f/{code[ids[1], 1]}", headers={"HX-Request": "true"})
    assert 'id="shadow-invite"' in out.get_data(as_text=True) and reads == ["row", "objects"]
    assert len(statements) == 1, statements
    client.post("/api/admin/start-challenge/2", headers=api_headers)
    answers_right(2)
    client.post("/api/admin/end-challenge/2", headers=api_headers)
    assert "You won!" in client.get(f"/f/{code[ids[0], 2]}").get_data(as_text=True)
    last_out = client.get(f"/f/{code[ids[1], 2]}").get_data(as_text=True)
    assert "Round closed" in last_out and 'id="shadow-invite"' not in last_out


@pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (bin/with-postgres)")
def test_a_page_before_flask_is_one_round_trip(app, client, grace, monkeypatch):
    """On PostgreSQL the fast path's one read is sent without a transaction: no BEGIN before it,
    no ROLLBACK after. The Start page and its fragment from the copy, then the stored form."""
    from quiz import branding
    monkeypatch.setattr(branding, "LOOK_CACHE_SECONDS", 3600)
    branding.forget_look()  # read once, below, and kept
    fragment = {"HX-Request": "true"}
    for headers in ({}, fragment):  # the first of each kind is Flask's, and kept
        assert client.get(f"/f/{grace}", headers=headers).status_code == 200
    pages = []
    for headers in ({}, fragment):
        db.session.commit()  # nothing begun: as fresh as a web process's request
        fast, _ = both(app, grace, served_fast=True, **headers)
        with round_trips(db.engine) as trips:
            page = Client(fast_path(app), use_cookies=False).get(f"/f/{grace}", headers=headers)
        pages.append((page.status_code, trips))
    press_start(client, grace)
    db.session.commit()
    with round_trips(db.engine) as trips:
        page = Client(fast_path(app), use_cookies=False).get(f"/f/{grace}")
    assert b'data-stored-form="forms"' in page.get_data()
    pages.append((page.status_code, trips))
    # one trip a page: the query itself, or its prepared statement's run — but once: psycopg
    # prepares a statement at its 5th run on a connection, its Parse a trip before that run
    # (kept since: a transaction that only read doesn't drop them, quiz/pg_connection.py)
    preparing = [len(trips) == 2 and trips[1].startswith("prepared ") for _, trips in pages]
    for (status, trips), once in zip(pages, preparing):
        assert status == 200 and len(trips) == 1 + once, trips
    assert sum(preparing) <= 1, pages


@pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL (bin/with-postgres)")
def test_a_page_handed_on_to_flask_reads_on_in_a_transaction(app, client, grace):
    """The fast path's reads are sent alone (one round trip each: the link's row, and the round's
    questions for its facts, once a process); Flask's view reads the link's objects and what more
    it needs in a transaction as ever (the first Start page of a process, which it renders and
    keeps)."""
    db.session.commit()
    with round_trips(db.engine) as trips:
        page = client.get(f"/f/{grace}")  # no copy yet: Flask renders it
    assert page.status_code == 200 and "Start" in page.get_data(as_text=True)
    begin = next((i for i, trip in enumerate(trips) if trip.startswith("BEGIN")), None)
    # Flask's, in a transaction; it only read, so it ends with COMMIT, which keeps the
    # connection's prepared statements (quiz/pg_connection.py)
    assert begin is not None and trips[-1] == "COMMIT", trips
    assert trips[0].startswith("SELECT form_link"), trips  # before Flask, alone
    # (the row's statement prepared at its first run: psycopg's Parse a trip of its own)
    assert all(trip.startswith(("SELECT", "prepared ")) for trip in trips[:begin]), trips
    assert len([trip for trip in trips[:begin] if "form_link" in trip]) == 1, trips  # the row
    assert [trip for trip in trips[begin:] if trip.startswith("SELECT form_link.id")], trips


def round_one_opened(app, client, load_bank, make_participant, api_headers, players: int) -> list:
    """Round 1 open for `players` players, its Start page copied in this process, and reads
    grouped as in a gevent web process: the players' round-1 codes."""
    load_bank()
    ids = [make_participant(f"Player {n}").id for n in range(players)]
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    codes = db.session.scalars(select(FormLink.code).join(Challenge).where(
        Challenge.number == 1, FormLink.participant_id.in_(ids))).all()
    assert client.get(f"/f/{codes[0]}").status_code == 200  # the first is Flask's, and kept
    db.session.commit()
    state(app).submit_writer.batched = True
    return codes


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL's group read (SQLite's reads never yield)")
def test_pages_opened_at_once_read_their_rows_in_one_query(app, client, load_bank,
                                                          make_participant, api_headers):
    """In a web process on PostgreSQL the pages opened in the same moment read their links' rows
    in one query (quiz/submit_read.py's group read): each still gets its own Start page, and an
    unknown code among them Flask's 404."""
    import gevent

    from quiz import links
    from quiz.submit_read import reader
    codes = round_one_opened(app, client, load_bank, make_participant, api_headers, players=4)
    group = reader().group(links._page_statements()[links.GROUPED], "code")
    before, fast = group.queries, fast_path(app)
    handed = []
    flask_app = fast.wrapped

    def counted(environ, start_response):
        handed.append(environ["PATH_INFO"])
        return flask_app(environ, start_response)
    fast.wrapped = counted
    try:
        asked = [*codes, "x" * 22]
        greenlets = [gevent.spawn(Client(app.wsgi_app, use_cookies=False).get, f"/f/{code}")
                     for code in asked]
        gevent.joinall(greenlets, raise_error=True)
    finally:
        fast.wrapped = flask_app
    for code, greenlet in zip(codes, greenlets):
        page = greenlet.value.get_data(as_text=True)
        assert greenlet.value.status_code == 200 and "Start" in page and f"/f/{code}/" in page
    assert greenlets[-1].value.status_code == 404
    assert handed == [f"/f/{'x' * 22}"]  # only the unknown code went on to Flask
    assert group.queries == before + 1


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL's group read (SQLite's reads never yield)")
def test_a_herd_of_pages_holds_no_pooled_connection_while_its_rows_are_read(
        app, client, load_bank, make_participant, api_headers):
    """The pages waiting for their group's read hold no connection from the pool: with all but one
    of the pool's connections taken, a herd larger than that one is still served (holding one
    each, they would leave the group's query none, until the pool's timeout)."""
    import gevent

    codes = round_one_opened(app, client, load_bank, make_participant, api_headers, players=8)
    held = [db.engine.connect() for _ in range(db.engine.pool.size() - 1)]
    try:
        greenlets = [gevent.spawn(Client(app.wsgi_app, use_cookies=False).get, f"/f/{code}")
                     for code in codes]
        done = gevent.joinall(greenlets, timeout=20, raise_error=True)
    finally:
        for connection in held:
            connection.close()
    assert len(done) == len(codes)
    assert [g.value.status_code for g in greenlets] == [200] * len(codes)
