"""Submits first (quiz/web/priority.py): while a rush of submits is in flight in a web process, its
reads wait for the rush to pass (at most READ_YIELD_MAX_SECONDS); POSTs, sockets and the
monitoring never wait; a lone submit holds nothing; 0 turns it off; bad settings are refused at
start.

The wrapper runs here on gevent greenlets in this process, around an app whose submits stay in
flight until the test lets them go (as a group commit's do until their batch commits), so what is
answered before what is certain without any timing. tests/test_priority_live.py sees it on the real
stack."""
import gevent
import pytest
from flask import Flask
from gevent.event import Event

from quiz import create_app
from quiz.config import ConfigError, TestConfig
from quiz.observability import REGISTRY
from quiz.web.priority import SubmitsFirst, may_wait


class Room:
    """An app whose submits wait for `release`; every request's path is written to `served` as the
    app reaches it, and to `answered` as its answer leaves the wrapper."""

    def __init__(self, threshold: int = 3, cap: float = 30):
        self.release, self.served, self.answered = Event(), [], []
        app = Flask(__name__)
        app.config.update(SUBMIT_PRIORITY_THRESHOLD=threshold, READ_YIELD_MAX_SECONDS=cap)
        self.wrapper = SubmitsFirst(app, self.app)
        self.wrapper.gated = cap > 0  # as under gunicorn's gevent workers

    def app(self, environ, start_response):
        path = environ["PATH_INFO"]
        self.served.append(path)
        if path.endswith("/submit"):
            self.release.wait()
        start_response("200 OK", [])
        return [b"ok"]

    def send(self, method: str, path: str, **headers) -> gevent.Greenlet:
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path, **headers}

        def request():
            body = self.wrapper(environ, lambda *_: None)
            self.answered.append(path)
            return body
        return gevent.spawn(request)

    def rush(self, count: int) -> list[gevent.Greenlet]:
        submits = [self.send("POST", f"/f/CODE{n}/submit") for n in range(count)]
        gevent.sleep(0)  # they reach the app and wait there
        return submits


def held() -> float:
    return REGISTRY.get_sample_value("knockout_read_held_seconds_count") or 0


def test_a_read_during_a_rush_of_submits_is_answered_after_them():
    room = Room(threshold=3)
    submits, before = room.rush(3), held()
    reads = [room.send("GET", "/ping"), room.send("HEAD", "/display"),
             room.send("GET", "/api/status")]
    gevent.sleep(0.01)
    assert room.served == [f"/f/CODE{n}/submit" for n in range(3)]  # the reads wait
    room.release.set()
    gevent.joinall(submits + reads, raise_error=True)
    assert room.answered[:3] == [f"/f/CODE{n}/submit" for n in range(3)]
    assert sorted(room.answered[3:]) == ["/api/status", "/display", "/ping"]
    assert held() == before + 3


def test_the_rush_is_over_only_once_the_submits_stay_below_the_threshold():
    """A group commit answers its batch at once, and the next wave arrives a moment later: the
    reads stay held across that dip."""
    room = Room(threshold=2)
    first = room.rush(2)
    read = room.send("GET", "/ping")
    room.release.set()
    gevent.joinall(first)
    room.release.clear()
    second = room.rush(2)  # the next wave, before the quiet spell is over
    gevent.sleep(0.1)
    assert "/ping" not in room.served
    room.release.set()
    gevent.joinall(second + [read], raise_error=True)
    assert room.answered[-1] == "/ping"


def test_a_read_is_never_held_longer_than_the_cap():
    room = Room(threshold=2, cap=0.05)
    submits = room.rush(2)
    read = room.send("GET", "/ping")
    read.join()
    assert room.answered == ["/ping"]  # the submits are still in flight
    room.release.set()
    gevent.joinall(submits, raise_error=True)


@pytest.mark.parametrize("method, path, headers", [
    ("POST", "/f/CODE9/start", {}),  # the Start press starts a player's clock
    ("POST", "/api/register", {}),
    ("POST", "/f/CODE9/submit", {}),  # one more submit of the rush
    ("GET", "/ws", {"HTTP_CONNECTION": "Upgrade", "HTTP_UPGRADE": "websocket"}),
    ("GET", "/metrics", {}), ("GET", "/healthz", {}),
    ("GET", "/f/CODE9", {}),  # the questions after a Start press: the player's clock runs
    ("GET", "/static/css/app.css", {}), ("GET", "/brand/look.css", {})])
def test_a_start_press_a_post_a_socket_and_the_monitoring_are_never_held(method, path, headers):
    room = Room(threshold=2)
    submits = room.rush(2)
    other = room.send(method, path, **headers)
    gevent.sleep(0)
    assert room.served[-1] == path  # reached the app during the rush
    room.release.set()
    gevent.joinall(submits + [other], raise_error=True)


def test_a_lone_submit_holds_nothing():
    room = Room(threshold=2)
    submit = room.rush(1)
    room.send("GET", "/ping").join()
    assert room.answered == ["/ping"]
    room.release.set()
    gevent.joinall(submit, raise_error=True)


def test_zero_turns_it_off():
    room = Room(threshold=2, cap=0)
    room.wrapper.gated = None  # decided on first use, as in a web process
    submits = room.rush(3)
    room.send("GET", "/ping").join()
    assert room.answered == ["/ping"] and room.wrapper.gated is False
    room.release.set()
    gevent.joinall(submits, raise_error=True)


def test_outside_gevent_it_is_a_pass_through(app, client):
    wrapper = app.wsgi_app
    assert isinstance(wrapper, SubmitsFirst)  # outermost
    assert client.get("/ping").status_code == 200 and wrapper.gated is False


def test_what_may_wait():
    assert may_wait({"REQUEST_METHOD": "GET", "PATH_INFO": "/api/status"})
    assert may_wait({"REQUEST_METHOD": "GET", "PATH_INFO": "/display"})
    assert may_wait({"REQUEST_METHOD": "HEAD", "PATH_INFO": "/ping"})
    assert not may_wait({"REQUEST_METHOD": "GET", "PATH_INFO": "/f/CODE"})  # a player's own page
    assert not may_wait({"REQUEST_METHOD": "POST", "PATH_INFO": "/f/CODE/start"})
    assert not may_wait({"REQUEST_METHOD": "GET", "PATH_INFO": "/ws", "HTTP_UPGRADE": "websocket"})


@pytest.mark.parametrize("settings, message", [
    ({"SUBMIT_PRIORITY_THRESHOLD": "1"}, "SUBMIT_PRIORITY_THRESHOLD='1' is not a number of "
                                         "submits of 2 or more"),
    ({"SUBMIT_PRIORITY_THRESHOLD": "many"}, "SUBMIT_PRIORITY_THRESHOLD='many' is not a number"),
    ({"READ_YIELD_MAX_SECONDS": "-1"}, "READ_YIELD_MAX_SECONDS='-1' can't be negative"),
    ({"READ_YIELD_MAX_SECONDS": "soon"}, "READ_YIELD_MAX_SECONDS='soon' is not a number"),
    ({"READ_YIELD_MAX_SECONDS": "30"}, "READ_YIELD_MAX_SECONDS=30 is more than 10 s"),
    ({"ANSWERED_FORMS_DELAY_SECONDS": "-3"}, "ANSWERED_FORMS_DELAY_SECONDS='-3' can't be negative"),
    ({"ANSWERED_FORMS_DELAY_SECONDS": "later"},
     "ANSWERED_FORMS_DELAY_SECONDS='later' is not a number"),
    ({"ANSWERED_FORMS_DELAY_SECONDS": "90"}, "ANSWERED_FORMS_DELAY_SECONDS=90 is more than 60 s"),
    ({"WORKER_NICE": "-5"}, "WORKER_NICE='-5' is not a niceness from 0 to 19"),
    ({"WORKER_NICE": "20"}, "WORKER_NICE='20' is not a niceness from 0 to 19"),
    ({"WORKER_NICE": "low"}, "WORKER_NICE='low' is not a niceness from 0 to 19")])
def test_bad_settings_are_refused_at_start(tmp_path, settings, message):
    config = type("Config", (TestConfig,), {"INSTANCE_PATH": str(tmp_path), **settings})
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        create_app(config)
