"""In-process CPU a request of the herd's round pages: the Start page, "Answers in ✔" and "Not
started yet", whole and fragment, with and without a registered phone's session cookie, and /ping
(the same run's yardstick). Run from a tree's root (its quiz/ and tests/ are imported), alternated
with the tree before, and compare medians:

    .venv/bin/python bench/page_cpu.py [requests a case] [count] [profile]

Prints JSON: case → ms a request (time.process_time over the requests, one thread, SQLite, a
real Redis); `count` adds how many requests each case handed on to Flask (the page fast path's
`wrapped`), `profile` prints a cProfile to stderr."""
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
from sqlalchemy import select
from werkzeug.test import Client

sys.path.insert(0, ".")  # the tree measured
from quiz import create_app  # noqa: E402
from quiz.config import TestConfig  # noqa: E402
from quiz.embedded import scratch_redis  # noqa: E402
from quiz.extensions import db, state  # noqa: E402
from quiz.models import Challenge, FormLink  # noqa: E402
from quiz.questions import apply_bank, parse_bank  # noqa: E402
from quiz.registration import register_participant, validate_registration  # noqa: E402
from tests.helpers import SMALL_BANK, make_config, press_start, submit  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 400
tmp = Path(tempfile.mkdtemp())
server, url = scratch_redis(tmp)
try:
    redis.Redis.from_url(url).flushall()
    app = create_app(make_config(tmp, url))
    ctx = app.app_context()
    ctx.push()
    db.create_all()
    apply_bank(parse_bank(SMALL_BANK))
    db.session.commit()
    ids = []
    for n in range(1, 41):
        ids.append(register_participant(validate_registration({
            "name": f"Player {n}", "email": f"p{n}@example.com", "phone": f"+1415555{n:04d}",
            "company": "Acme", "consent": True})).id)
    db.session.commit()
    api = {"Authorization": f"Bearer {TestConfig.ADMIN_API_TOKEN}"}
    assert app.test_client().post("/api/admin/start-challenge/1", headers=api).status_code == 200

    def code(pid, number):
        return db.session.scalar(select(FormLink.code).join(Challenge).where(
            FormLink.participant_id == pid, Challenge.number == number))
    ready = [code(p, 1) for p in ids[20:]]
    answered = [code(p, 1) for p in ids[:20]]
    not_open = [code(p, 2) for p in ids]
    phone = app.test_client()
    for c in answered:
        press_start(phone, c)
        assert submit(phone, c, [["S3"], ["RDS", "DynamoDB"]]).status_code == 303
    reg = app.test_client()
    reg.get("/register")
    reg.get("/register")
    cookie = reg.get_cookie("session").value
    ctx.pop()

    results = {}
    HANDED = None
    if "count" in sys.argv:
        from quiz.web.page_path import PageFastPath
        wsgi = app.wsgi_app
        while not isinstance(wsgi, PageFastPath):
            wsgi = wsgi.wrapped
        inner, HANDED = wsgi.wrapped, [0]

        def counted(environ, start_response):
            HANDED[0] += 1
            return inner(environ, start_response)
        wsgi.wrapped = counted

    def measure():
        client = Client(app.wsgi_app, use_cookies=False)
        cases = {"ping": (["/ping"], {})}
        for name, codes in (("start", ready), ("answers_in", answered), ("not_started", not_open)):
            for frag in (False, True):
                if name == "not_started" and frag:
                    continue
                for session in (False, True):
                    headers = {"HX-Request": "true"} if frag else {}
                    if session:
                        headers["Cookie"] = f"session={cookie}"
                    case = f"{name}{' fragment' if frag else ''}{' +session' if session else ''}"
                    cases[case] = ([f"/f/{c}" for c in codes], headers)
        for _ in range(2):  # warm, then measured
            for name, (paths, headers) in cases.items():
                for path in paths[:5]:
                    assert client.get(path, headers=headers).status_code == 200
                started = time.process_time()
                for i in range(N):
                    response = client.get(paths[i % len(paths)], headers=headers)
                    response.close()
                results[name] = (time.process_time() - started) / N * 1000
                if HANDED is not None:
                    results[name + " handed"] = HANDED[0]
                    HANDED[0] = 0
    if "profile" in sys.argv:
        import cProfile
        import pstats
        plain = measure

        def measure():
            prof = cProfile.Profile()
            prof.enable()
            plain()
            prof.disable()
            pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(45)
    thread = threading.Thread(target=measure)
    thread.start()
    thread.join()
    state(app).dispatcher.stop()
    print(json.dumps(results))
finally:
    server.terminate()
    server.wait(timeout=10)
