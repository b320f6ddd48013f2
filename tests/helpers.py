"""What the tests share that is not a fixture: the small question bank, the test database, and a
phone's or an organizer's pages read and posted through Flask's test client."""
import atexit
import html
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import boto3
import sqlalchemy

from quiz.config import TestConfig

ROOT = Path(__file__).resolve().parent.parent

SMALL_BANK = """
challenges:
  - number: 1
    title: Warm-up
    keep_fraction: 0.5
    questions:
      - text: Which service stores objects?
        choices: [EC2, S3, SQS]
        answer: S3
      - text: Which are databases?
        choices: [RDS, Lambda, DynamoDB]
        answer: [RDS, DynamoDB]
        points: 2
  - number: 2
    title: Second
    time_limit_seconds: 60
    scoring: speed
    questions:
      - text: 2 + 2?
        choices: ["3", "4", "5"]
        answer: "4"
"""

# A round with a photo question (scored once staff accept the photo), then a plain final.
PHOTO_BANK = """
challenges:
  - number: 1
    title: Booth hunt
    keep_fraction: 0.5
    questions:
      - text: Which service stores objects?
        choices: [EC2, S3, SQS]
        answer: S3
      - type: photo
        text: A selfie at booth 12
        points: 2
  - number: 2
    title: Final
    questions:
      - text: 2 + 2?
        choices: ["3", "4", "5"]
        answer: "4"
"""


def _postgres_url() -> str:
    """The suite runs on SQLite by default, and on PostgreSQL when KNOCKOUT_TEST_POSTGRES_URL names
    a server's database. Under pytest-xdist (bin/test runs each pass on two workers) every worker
    has a database of its own on that server (knockout_test_gw0, …), made here, and the processes
    a test starts are pointed at it too."""
    url = os.environ.get("KNOCKOUT_TEST_POSTGRES_URL", "")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not url or not worker:
        return url
    given = sqlalchemy.make_url(url)
    if given.database == os.environ.get("KNOCKOUT_TEST_POSTGRES_NAME"):  # made by this worker
        return url
    name = f"{given.database}_{worker}"
    _postgres_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
                    f'CREATE DATABASE "{name}"')
    url = given.set(database=name).render_as_string(hide_password=False)
    os.environ.update(KNOCKOUT_TEST_POSTGRES_URL=url, DATABASE_URL=url,
                      KNOCKOUT_TEST_POSTGRES_NAME=name)
    return url


def _postgres_admin(url: str, *statements: str) -> None:
    """Run statements that cannot run in a transaction (CREATE and DROP DATABASE) from the
    server's `postgres` database."""
    engine = sqlalchemy.create_engine(sqlalchemy.make_url(url).set(database="postgres"),
                                      isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        for statement in statements:
            connection.execute(sqlalchemy.text(statement))
    engine.dispose()


POSTGRES_URL = _postgres_url()


def database_url(tmp_path: Path, template: str = "") -> str:
    """A fresh database for one test: a SQLite file, or the PostgreSQL database wiped clean; empty,
    or a copy of a `template` made once a session ("tables": the models' tables created;
    "migrated": every migration applied), for a fraction of what making it again costs. On
    PostgreSQL, a database the last test had as a copy of "tables" is emptied in place instead
    (_emptied)."""
    if not POSTGRES_URL:
        path = tmp_path / "test.db"
        if template:
            shutil.copyfile(_template(template), path)
        return f"sqlite:///{path}"
    if template:
        if not (template == _copied["from"] == "tables" and _emptied(template)):
            _postgres_admin(POSTGRES_URL,
                            f'DROP DATABASE IF EXISTS "{_POSTGRES_NAME}" WITH (FORCE)',
                            f'CREATE DATABASE "{_POSTGRES_NAME}" TEMPLATE "{_template(template)}"')
            _copied["from"] = template
            if template not in _schemas:  # the fresh copy's schema is the template's
                _schemas[template] = _schema()
        return POSTGRES_URL
    _copied["from"] = ""
    engine = sqlalchemy.create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return POSTGRES_URL


_POSTGRES_NAME = sqlalchemy.make_url(POSTGRES_URL).database if POSTGRES_URL else ""
_templates: dict[str, str] = {}
# The template this process's PostgreSQL database was last copied from (the rows since: a test's).
_copied = {"from": ""}
_schemas: dict[str, str] = {}

# Everything in the public schema a test could change besides rows: tables and their columns,
# indexes, constraints, enums, triggers.
_SCHEMA = sqlalchemy.text("""SELECT md5(concat_ws('|',
  (SELECT string_agg(format('%s.%s %s %s %s', c.relname, a.attname,
                            format_type(a.atttypid, a.atttypmod), a.attnotnull,
                            pg_get_expr(d.adbin, d.adrelid)), ',' ORDER BY c.relname, a.attnum)
   FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
   LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
   WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT string_agg(indexdef, ',' ORDER BY indexdef) FROM pg_indexes
   WHERE schemaname = 'public'),
  (SELECT string_agg(conname || pg_get_constraintdef(oid), ',' ORDER BY conname)
   FROM pg_constraint WHERE connamespace = 'public'::regnamespace),
  (SELECT string_agg(t.typname || ':' || e.enumlabel, ',' ORDER BY t.typname, e.enumsortorder)
   FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid),
  (SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal)))""")


def _emptied(template: str) -> bool:
    """Empty the database the last test had (a copy of `template`) in place: every table truncated
    and its ids restarted, a third of what copying the template again costs the server. Only
    when its schema is still the template's (a test may have changed it) and no connection left
    over holds a lock on it; else False, and the caller copies the template again."""
    engine = sqlalchemy.create_engine(POSTGRES_URL, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("SET LOCAL lock_timeout = '1s'"))
            if connection.scalar(_SCHEMA) != _schemas[template]:
                return False
            tables = connection.scalars(sqlalchemy.text(
                "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public'")).all()
            if tables:
                connection.execute(sqlalchemy.text(
                    f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        return True
    except sqlalchemy.exc.DBAPIError:
        return False
    finally:
        engine.dispose()


def _schema() -> str:
    """The fingerprint of this process's database's schema."""
    engine = sqlalchemy.create_engine(POSTGRES_URL, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.scalar(_SCHEMA)
    finally:
        engine.dispose()


def _template(kind: str) -> str:
    """The database of this kind, made on first use in this process: a SQLite file's path, or a
    PostgreSQL database's name (copied with CREATE DATABASE … TEMPLATE, which needs it left without
    connections)."""
    if kind not in _templates:
        directory = Path(tempfile.mkdtemp(prefix="knockout-template-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        if POSTGRES_URL:
            name = f"{_POSTGRES_NAME}_{kind}"
            _postgres_admin(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
                            f'CREATE DATABASE "{name}"')
            url = sqlalchemy.make_url(POSTGRES_URL).set(database=name).render_as_string(False)
        else:
            name = str(directory / f"{kind}.db")
            url = f"sqlite:///{name}"
        {"tables": _create_tables, "migrated": _migrate}[kind](url, directory)
        _templates[kind] = name
    return _templates[kind]


def _create_tables(url: str, _directory: Path) -> None:
    from quiz import models  # noqa: F401 (their tables)
    from quiz.extensions import db
    engine = sqlalchemy.create_engine(url)
    db.metadata.create_all(engine)
    engine.dispose()


def _migrate(url: str, directory: Path) -> None:
    """`flask db upgrade`, as a deploy runs it (and the live stack before it starts)."""
    from quiz import create_app
    from quiz.extensions import db, state
    config = type("Config", (TestConfig,), dict(
        SQLALCHEMY_DATABASE_URI=url, INSTANCE_PATH=str(directory / "instance"),
        REDIS_URL="redis://127.0.0.1:1/0", STORAGE_URL=f"file://{directory / 'storage'}"))
    app = create_app(config)
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    with app.app_context():
        state(app).dispatcher.stop()
        db.engine.dispose()
    assert result.exit_code == 0, f"flask db upgrade: {result.output}{result.exception or ''}"


@contextmanager
def round_trips(engine):
    """PostgreSQL: what the connections `engine` lends out meanwhile send, one entry a round trip
    to the server (a simple query's text: psycopg's BEGIN, COMMIT, ROLLBACK; else the statement
    an extended query's Sync ends), read from libpq's trace of the protocol."""
    from psycopg import pq
    trips: list[str] = []
    lent = []

    def traced(dbapi_connection, _record, _proxy):
        dbapi_connection.pgconn.trace(trace.fileno())
        dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS
                                                | pq.Trace.REGRESS_MODE)
        lent.append(dbapi_connection)

    def untraced(dbapi_connection, _record):
        dbapi_connection.pgconn.untrace()  # (flushes what libpq holds of it)

    with tempfile.TemporaryFile("w+") as trace:
        sqlalchemy.event.listen(engine, "checkout", traced)
        sqlalchemy.event.listen(engine, "checkin", untraced)
        try:
            yield trips
        finally:
            sqlalchemy.event.remove(engine, "checkout", traced)
            sqlalchemy.event.remove(engine, "checkin", untraced)
            for dbapi_connection in lent:  # still lent: a test's own session
                if not dbapi_connection.closed:
                    dbapi_connection.pgconn.untrace()
            trace.seek(0)
            statement = None
            for line in trace.read().splitlines():
                sent, _, kind, *rest = line.split("\t") + ["", "", ""]
                if sent != "F":
                    continue
                if kind == "Query":
                    trips.append(rest[0].strip(' "'))
                elif kind == "Parse" and statement is None:
                    statement = rest[0].split('"', 4)[3][:60]  # (its name, then its text)
                elif kind == "Bind" and statement is None:
                    statement = "prepared " + rest[0].split('"', 4)[3]
                elif kind == "Sync":
                    trips.append(statement or "Sync")
                    statement = None


def make_config(tmp_path: Path, redis_url: str, template: str = "", **overrides) -> type:
    """TestConfig on a fresh database (a copy of a `template`, if asked: database_url), this Redis
    and a storage folder; `overrides` on top."""
    settings = dict(INSTANCE_PATH=str(tmp_path / "instance"), REDIS_URL=redis_url,
                    SQLALCHEMY_DATABASE_URI=database_url(tmp_path, template),
                    STORAGE_URL=f"file://{tmp_path / 'storage'}")
    settings.update(overrides)
    return type("Config", (TestConfig,), settings)


AWS_TEST_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}


def new_bucket(endpoint: str) -> str:
    """A fresh, empty bucket on moto's server."""
    name = f"forms-{next(_buckets)}-{os.getpid()}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=name)
    return name


_buckets = iter(range(1, 1_000_000))


def csrf_from(html: str) -> str:
    """The CSRF token a page's form carries, as a browser would send it back."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF token"
    return match.group(1)


def session_token(client) -> str:
    """The session's CSRF token, as a page of the session carries it (a link's page carries the
    link's token instead: this is what a link page rendered before that change held)."""
    return csrf_from(client.get("/register").get_data(as_text=True))


def post_form(client, page_url: str, action_url: str, data: dict, **kwargs):
    """GET the page, then POST its form with the page's CSRF token (a phone without JS)."""
    page = client.get(page_url)
    token = csrf_from(page.get_data(as_text=True))
    return client.post(action_url, data={"csrf_token": token, **data}, **kwargs)


class _Forms(HTMLParser):
    """A page's forms as a browser sends them: action, and each named field's name and value (text
    and hidden inputs, textareas; file inputs and unnamed fields are left out)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._textarea: list | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action", ""), "fields": [],
                               "enctype": attrs.get("enctype", "")})
        elif tag == "input" and self.forms and attrs.get("name") and attrs.get("type") != "file":
            self.forms[-1]["fields"].append([attrs["name"], attrs.get("value", "")])
        elif tag == "textarea" and self.forms and attrs.get("name"):
            self._textarea = [attrs["name"], ""]
            self.forms[-1]["fields"].append(self._textarea)

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None


def forms_of(page: str) -> list[dict]:
    """Every form of a page: {"action", "enctype", "fields": [[name, value], ...]}."""
    parser = _Forms()
    parser.feed(page)
    return parser.forms


def say_yes(client, response, **kwargs):
    """On the console's confirmation page (`response`), press Yes as a browser without JavaScript
    does: the page's form posted back as it stands."""
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Are you sure?" in page, page[:2000]
    form = next(form for form in forms_of(page) if ["confirmed", "yes"] in form["fields"])
    data: dict[str, list[str]] = {}
    for name, value in form["fields"]:
        data.setdefault(name, []).append(value)
    return client.post(form["action"], data=data, **kwargs)


def login(client, password="test-password"):
    """Log in to the console as the organizer."""
    return post_form(client, "/admin/login", "/admin/login",
                     {"username": "admin", "password": password})


def text(response) -> str:
    """A response's page as a person reads it (entities decoded)."""
    return html.unescape(response.get_data(as_text=True))


def start(client, code):
    """Press Start on a round's link (its form's token: the link's own)."""
    name, token = token_field(client.get(f"/f/{code}").get_data(as_text=True))
    return client.post(f"/f/{code}/start", data={name: token})


def answer_form(client, code) -> tuple[str, dict[str, dict[str, str]]]:
    """The question page's CSRF token and, per question field, choice text → value (as a phone
    sees it)."""
    page = client.get(f"/f/{code}").get_data(as_text=True)
    return csrf_from(page), choice_values(page)


def submit(client, code, picks: list[list[str]]):
    """Post the picks (choice texts, one list per question) through the link's question page."""
    page = client.get(f"/f/{code}").get_data(as_text=True)
    fields = choice_values(page)
    name, token = token_field(page)  # a page's first form token: the link's, or the session's
    data = {name: token}
    for (name, options), chosen in zip(fields.items(), picks):
        data[name] = [options[c] for c in chosen]
    return client.post(f"/f/{code}/submit", data=data)


def press_start(client, code):
    """Press Start on a round's link, which must take the player to the questions."""
    name, token = token_field(client.get(f"/f/{code}").get_data(as_text=True))
    assert client.post(f"/f/{code}/start", data={name: token}).status_code == 303


def token_field(page: str) -> tuple[str, str]:
    """The stored form's token, or the live page's CSRF token, as a phone would send it back."""
    match = re.search(r'name="(form_token|csrf_token)" value="([^"]+)"', page)
    assert match, page[:1000]
    return match.group(1), match.group(2)


def choice_values(page: str) -> dict[str, dict[str, str]]:
    """Per question field of a question page, choice text → the player's (opaque) value; in the
    bank's order (by question id), whatever order the page shows them in."""
    fields: dict[str, dict[str, str]] = {}
    for name, value, label in re.findall(
            r'<input type="(?:radio|checkbox)" name="(q\d+)" value="([^"]+)"[^>]*>\s*'
            r'<span>([^<]*)</span>', page):
        fields.setdefault(name, {})[html.unescape(label)] = value
    return dict(sorted(fields.items(), key=lambda field: int(field[0][1:])))


def rows_of(page: str) -> dict[int, dict]:
    """The report table as a person reads it: round → verdict, score, rank, time cells (tags
    stripped)."""
    rows = {}
    for number, body in re.findall(r'<tr class="round-row" data-round="(\d+)">(.*?)</tr>', page,
                                   re.S):
        cells = {cls: read(cell)
                 for cls, cell in re.findall(r'<td class="num (\w+)">(.*?)</td>', body, re.S)}
        cells["verdict"] = read(re.search(r'<small class="verdict">(.*?)</small>', body, re.S)[1])
        rows[int(number)] = cells
    return rows


def read(fragment: str) -> str:
    """An HTML fragment's words as read: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def report_rows(client, code) -> dict:
    """The rows of a player's report page."""
    response = client.get(f"/r/{code}")
    assert response.status_code == 200
    return rows_of(response.get_data(as_text=True))


def kill_a_worker_mid_batch(start_worker, count, total: int, going: int) -> tuple[int, int]:
    """The real-worker fault: start a worker process (in its own process group), kill -9 it once
    `going` messages are sent, let reconcile hand its work to a second one, wait until `total` are
    sent. `count(status)` counts the messages in a status. Returns (how many were in doubt —
    claimed, 'sending' — when it died: at most one; how many reconcile requeued)."""
    import signal
    import time

    from quiz import reconcile
    first, second = start_worker(), None
    try:
        deadline = time.monotonic() + 30
        while count("sent") < going:
            assert time.monotonic() < deadline, "the first worker never got going"
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        in_doubt = count("sending")
        assert in_doubt <= 1 and count("queued") > 0  # killed mid-batch, with work left
        time.sleep(0.6)
        second = start_worker()
        requeued = reconcile.reconcile_messages(stale_after=0.5, forgotten_after=0.5)["requeued"]
        while count("sent") < total:
            assert time.monotonic() < deadline + 30, f"{count('sent')} of {total} sent"
            time.sleep(0.1)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return in_doubt, requeued


def round_one_code(client, api_headers, load_bank, make_participant, run_jobs) -> str:
    """Grace registered, her stored forms made (on whatever storage the test set up first), round 1
    opened through the API: her round-1 link's code."""
    from quiz.extensions import db
    from quiz.models import Challenge, FormLink
    load_bank()
    participant_id = make_participant("Grace").id
    run_jobs()
    client.post("/api/admin/start-challenge/1", headers=api_headers)
    return db.session.scalar(sqlalchemy.select(FormLink.code).where(
        FormLink.participant_id == participant_id, FormLink.challenge_id == sqlalchemy.select(
            Challenge.id).where(Challenge.number == 1).scalar_subquery()))
