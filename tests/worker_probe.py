"""A WSGI app for tests/test_web_worker.py's own gunicorn (web_worker.Worker, no database, no
Redis): each answer says which web process answered and how many requests that process had
served, this one included. GET /block?<fifo> holds the whole process (its event loop, not only the
request's greenlet) until the test opens that fifo for writing: a web process stuck."""
import itertools
import json
import os
from pathlib import Path

served = itertools.count(1)


def app(environ, start_response):
    if environ["PATH_INFO"] == "/block":
        fifo = Path(environ["QUERY_STRING"])
        fifo.with_suffix(".pid").write_text(str(os.getpid()))
        with open(fifo, "rb") as stuck:  # the OS's blocking open: gevent's loop waits with it
            stuck.read()
    body = json.dumps({"pid": os.getpid(), "served": next(served)}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
