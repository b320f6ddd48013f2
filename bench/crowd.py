"""The 10,000-player scenario's load generator (bench/event10k.py runs a few): a share of the phones
over keep-alive HTTP/1.1, or a share of the projector and console websockets, in one gevent process.

    python -m bench.crowd HOST PORT

Commands come on stdin, one JSON object a line; each gets one `ANSWER {...}` line on stdout (`go`
answers once every phone of this process has its answers in). Times are `time.monotonic()`: one
clock for every process on this machine.

A phone is a player with a link per round. It waits on the page it shows polling as the build's
phones do (static/js/waiting.js: `GET /api/status` with `If-None-Match`; when the rounds changed,
its own page's fragment at a random moment within the status's spread, once however many changes
came meanwhile; a page that no longer waits, e.g. a result, stops polling. Without that route: its
`/f/<code>` fragment every 3–6 s), opens its link at its time (the SMS), presses Start, posts the
answers read off its own form, and waits again on its "submitted" page until the round closes and
its result comes. The HTTP client is a few lines over gevent sockets: a library client would cost
the shared two cores more than the server's side of the requests.
"""
from gevent import monkey

monkey.patch_all()

import html  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from urllib.parse import urlencode  # noqa: E402

import gevent  # noqa: E402
import websocket  # noqa: E402
from gevent.event import Event  # noqa: E402
from gevent.fileobject import FileObject  # noqa: E402
from gevent.pool import Pool  # noqa: E402
from gevent.lock import BoundedSemaphore  # noqa: E402
from gevent.queue import LifoQueue  # noqa: E402

# A form is read as a browser sends it: its own fields, not another form's on the same page (the
# Start page's language switch and help form carry the session's CSRF token; the Start form the
# link's form_token, quiz/rehearsal_pages.py form_fields does the same).
START_FORM = re.compile(rb'<form\b([^>]*\baction="[^"]*/start"[^>]*)>(.*?)</form>', re.S)
SUBMIT_FORM = re.compile(rb'<form\b([^>]*\baction="[^"]*/submit"[^>]*)>(.*?)</form>', re.S)
HIDDEN = re.compile(rb'<input type="hidden" name="([^"]+)" value="([^"]*)"')
CHOICE = re.compile(rb'<input type="(?:radio|checkbox)" name="(q\d+)" value="([^"]+)"')
# A form posted through htmx (its hx-post: the Start form, templates/play/_state.html; the questions
# form, templates/play/_questions.html): a browser sends HX-Request and takes the page as the
# answer (the questions after Start, "Answers in" after the submit), with no 303 and GET after it.
HX_POST = re.compile(rb'\bhx-post="')
RENDERED_AT = re.compile(rb'data-rendered-at="([0-9.]+)"')
# What a page that is not the expected one says (its flash, else its state's heading, else its
# title), so an error count names the page a phone got.
SAYS = [re.compile(rb'class="flash[^"]*"[^>]*>\s*([^<]{1,60})'),
        re.compile(rb'<h2>([^<]{1,60})</h2>'), re.compile(rb'<title>([^<]{1,60})</title>')]
# What a page that waits on the shared status carries (templates/play/_state.html).
WAITS = re.compile(rb'data-rounds-version="([^"]*)" data-round="(\d+)" data-state="([a-z_]+)"')
# Connections per process at most. deploy/nginx.conf sets no max_conns: nginx opens an upstream
# connection for every request in flight, so a slow server sees the whole queue, not a client-side
# one (a bound of 150 a process held the herd back in the load generator, where it was not timed).
CONNECTIONS = 1_000
# An idle connection is dropped after this long, as deploy/nginx.conf's upstream pool does: gunicorn
# closes one idle for 5 s (its keepalive), and a request sent as it closes would be lost.
IDLE_S = 4.0
FRAGMENT_POLL = (3.0, 6.0)  # today's phones: htmx re-GETs the fragment after 3–6 s


class Closed(Exception):
    pass


class Response:
    __slots__ = ("status", "headers", "cookies", "body")

    def __init__(self, status, headers, cookies, body):
        self.status, self.headers, self.cookies, self.body = status, headers, cookies, body


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf, self.alive = b"", True

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise Closed()
        self.buf += data

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def request(self, raw: bytes, head_only: bool = False) -> Response:
        self.sock.sendall(raw)
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(None, 2)[1])
        headers, cookies = {}, []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip()
            if name == b"set-cookie":
                cookies.append(value)
            else:
                headers[name] = value
        if status in (204, 304) or status < 200 or head_only:
            body = b""
        elif b"content-length" in headers:
            body = self._take(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            parts = []
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                parts.append(self._take(size))
                self._take(2)
            body = b"".join(parts)
        else:  # until the server closes
            try:
                while True:
                    self._fill()
            except Closed:
                pass
            body, self.buf, self.alive = self.buf, b"", False
        if headers.get(b"connection", b"").lower() == b"close":
            self.alive = False
        return Response(status, headers, cookies, body)

    def close(self) -> None:
        self.alive = False
        self.sock.close()


class Http:
    """A bounded pool of keep-alive connections to one server, and what each request measured."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.idle = LifoQueue()
        self.slots = BoundedSemaphore(CONNECTIONS)
        self.latencies = defaultdict(list)  # category → seconds
        self.statuses = defaultdict(Counter)  # category → status → count

    def request(self, category: str, method: str, path: str, headers: dict | None = None,
                body: bytes = b"") -> Response | None:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body or method == "POST":
            if "Content-Type" not in (headers or {}):
                lines.append("Content-Type: application/x-www-form-urlencoded")
            lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        started = time.monotonic()  # a wait for a connection is part of what the phone waits
        with self.slots:
            while True:
                connection = self.reuse()
                fresh = connection is None
                try:
                    if fresh:
                        connection = Connection(self.host, self.port)
                    response = connection.request(raw)
                except (OSError, Closed) as error:
                    if connection is not None:
                        connection.close()
                    timeout = isinstance(error, TimeoutError)
                    if fresh or timeout:
                        # a phone gives up after 30 s without an answer
                        self.statuses[category]["no answer in 30 s" if timeout
                                                else "connection error"] += 1
                        return None
                    continue  # a kept-alive connection the server closed meanwhile: the next one
                if connection.alive:
                    self.idle.put((connection, time.monotonic()))
                break
        self.latencies[category].append(time.monotonic() - started)
        self.statuses[category][str(response.status)] += 1
        return response

    def reuse(self) -> "Connection | None":
        """The most recently used idle connection, if it has been idle less than IDLE_S (older ones
        are closed)."""
        while not self.idle.empty():
            connection, since = self.idle.get()
            if time.monotonic() - since < IDLE_S:
                return connection
            connection.close()
        return None

    def take(self) -> dict:
        """What was measured since the last take, as JSON-ready lists."""
        taken = {"latencies": {k: [round(v, 5) for v in values]
                               for k, values in self.latencies.items()},
                 "statuses": {k: dict(v) for k, v in self.statuses.items()}}
        self.latencies.clear()
        self.statuses.clear()
        return taken


class Phone:
    __slots__ = ("codes", "cookie", "etag", "version", "page", "round", "state", "next_poll", "due",
                 "latest")

    def __init__(self, codes: list[str]):
        self.codes, self.cookie, self.etag, self.version = codes, None, None, None
        # The page it shows: round 1's, waiting for it to open (its version unknown until the first
        # status: taken as current). `state` None: a page that doesn't wait (no polling).
        self.page, self.round, self.state = codes[0], 1, "not_open"
        self.next_poll, self.due = 0.0, None  # when it asks the status next; fetches its page
        self.latest = None  # the newest status it got (a 304 means: still this one)

    def shows(self, code: str, number: int, response: Response | None) -> None:
        """Its page is now this one: waiting on the status (and at which version), or not."""
        self.page, self.round, self.due = code, number, None
        found = WAITS.search(response.body) if response is not None else None
        self.state = found.group(3).decode() if found else None
        self.version = found.group(1).decode() if found else None

    def headers(self, **extra) -> dict:
        if self.cookie:
            extra["Cookie"] = self.cookie
        return extra

    def keep_cookie(self, response: Response | None) -> None:
        for cookie in response.cookies if response is not None else ():
            if cookie.startswith(b"session="):
                value = cookie.split(b";", 1)[0]
                if value != b"session=":
                    self.cookie = value.decode()


class Crowd:
    """This process's phones and what they do per round."""

    def __init__(self, http: Http, phones: list[list[str]], mode: str, poll_seconds: float):
        self.http, self.mode, self.poll_seconds = http, mode, poll_seconds
        self.phones = [Phone(codes) for codes in phones]
        self.go, self.closed, self.all_in = Event(), Event(), Event()
        self.t0, self.pending, self.greenlets, self.number = 0.0, 0, [], 1
        self.accepted, self.answered_at = [], []

    def wait(self, number: int, plan: dict, seed: int) -> None:
        """Every phone on its page for round `number`, polling until the round opens."""
        self.go, self.closed, self.all_in, self.number = Event(), Event(), Event(), number
        self.accepted, self.answered_at, self.burst_from = [], [], plan["answer_s"] - 1
        self.pending = len(self.phones)
        rng = random.Random(seed)
        self.greenlets = [gevent.spawn(self.lifecycle, phone, number, when(rng, plan),
                                       random.Random(rng.random()))
                          for phone in self.phones]

    def open(self, t0: float) -> None:
        self.t0 = t0
        self.go.set()

    def poll_once(self, phone: Phone, code: str, category: str) -> float:
        """What a waiting phone does when its time comes (its page's fetch, the status's poll);
        returns the seconds until it does something again (inf: its page no longer waits)."""
        if self.mode != "status":
            phone.keep_cookie(self.http.request(category, "GET", f"/f/{code}",
                                                phone.headers(**{"HX-Request": "true"})))
            return random.uniform(*FRAGMENT_POLL)
        now = time.monotonic()
        if phone.due is not None and now >= phone.due:
            page = self.http.request(category + "_fetch", "GET", f"/f/{phone.page}",
                                     phone.headers(**{"HX-Request": "true"}))
            phone.keep_cookie(page)
            if page is not None and page.status == 200:
                phone.shows(phone.page, phone.round, page)
            else:
                phone.due = None  # the next poll finds the old version and schedules it again
        if phone.state is None:
            return float("inf")
        if now >= phone.next_poll:
            self.poll_status(phone, category)
            phone.next_poll = now + self.poll_seconds * (1 + random.random() / 2)
        return max(0.0, min(phone.next_poll, phone.due or phone.next_poll) - time.monotonic())

    def poll_status(self, phone: Phone, category: str) -> None:
        """GET /api/status; when the rounds changed, its page's fetch within the spread (as
        static/js/waiting.js: spread_seconds if its round opened, else result_spread_seconds; one
        fetch for several changes, brought forward by a more urgent one; a failed fetch scheduled
        again at the next answer)."""
        response = self.http.request(category, "GET", "/api/status",
                                     {"If-None-Match": phone.etag} if phone.etag else {})
        if response is None or response.status not in (200, 304):
            return
        new = response.status == 200
        if new:
            phone.etag = response.headers.get(b"etag", b"").decode() or None
            phone.latest = json.loads(response.body)
            self.poll_seconds = float(phone.latest.get("poll_seconds") or self.poll_seconds)
        status = phone.latest
        if status is None:
            return
        rounds = status.get("rounds_version") or status.get("version")
        if phone.version is None:
            phone.version = rounds  # the bench's phones start on a current page
        elif rounds != phone.version and (new or phone.due is None):
            opened = phone.state == "not_open" and status.get("open_round") == phone.round
            spread = status.get("spread_seconds" if opened else "result_spread_seconds") or 0
            due = time.monotonic() + random.uniform(0, spread)
            if phone.due is None or due < phone.due:
                phone.due = due
        elif rounds == phone.version:
            phone.due = None  # undone before its fetch (a round reopened as it was)

    def lifecycle(self, phone: Phone, number: int, times: tuple, rng: random.Random) -> None:
        opens, starts, submits = times
        code = phone.codes[number - 1]
        try:
            # phones don't poll in step: each starts at a random point of its cycle (and later
            # rounds go on with the cycle each phone is at)
            if phone.next_poll == 0.0 or self.mode == "fragment":
                phone.next_poll = time.monotonic() + rng.uniform(
                    0, FRAGMENT_POLL[1] if self.mode == "fragment" else self.poll_seconds * 1.5)
                gevent.sleep(max(0.0, phone.next_poll - time.monotonic()))
            while not (self.go.is_set() and time.monotonic() >= self.t0 + opens):
                if self.closed.is_set():
                    return
                category = "round_poll" if self.go.is_set() else "wait"
                interval = self.poll_once(phone, code, category)
                end = time.monotonic() + interval
                if not self.go.is_set():
                    self.go.wait(timeout=None if interval == float("inf") else interval)
                if self.go.is_set():  # its SMS came: it opens the link at its time
                    gevent.sleep(max(0.0, min(end, self.t0 + opens) - time.monotonic()))
            self.play(phone, code, starts, submits, rng)
        except Exception as error:  # counted, never a hang: the round waits for every phone
            self.http.statuses["phone"][f"{type(error).__name__}: {error}"[:80]] += 1
        finally:
            self.pending -= 1
            if self.pending == 0:
                self.all_in.set()
        while not self.closed.is_set():
            interval = self.poll_once(phone, code, "round_poll")
            self.closed.wait(timeout=None if interval == float("inf") else interval)

    def play(self, phone: Phone, code: str, starts: float, submits: float,
             rng: random.Random) -> None:
        """Open the link, press Start, answer from the page's own form."""
        page = self.http.request("open", "GET", f"/f/{code}", phone.headers())
        phone.keep_cookie(page)
        phone.shows(code, self.number, page)  # its SMS link: no fetch of the old page due
        start = START_FORM.search(page.body) if page is not None else None
        if start is None:  # (no answer at all is counted as an error already)
            if page is not None:
                self.http.statuses["open"][f"unreadable page ({says(page.body)})"] += 1
            return
        gevent.sleep(max(0.0, self.t0 + starts - time.monotonic()))
        # the Start form's own fields (the link's form_token), sent as the form sends them: through
        # htmx when it has hx-post (the answer is the questions page), else a plain post (a 303,
        # then the page)
        htmx = HX_POST.search(start.group(1)) is not None
        headers = phone.headers(**({"HX-Request": "true", "HX-Current-URL": f"/f/{code}"}
                                   if htmx else {}))
        started = self.http.request("start", "POST", f"/f/{code}/start", headers,
                                    urlencode(fields(start.group(2))).encode())
        phone.keep_cookie(started)
        if htmx and started is not None and started.status == 200:
            form = started
        else:
            form = self.http.request("questions", "GET", f"/f/{code}", phone.headers())
            phone.keep_cookie(form)
        questions = SUBMIT_FORM.search(form.body) if form is not None else None
        choices = defaultdict(list)
        for name, value in CHOICE.findall(questions.group(2) if questions else b""):
            choices[name.decode()].append(value.decode())
        if questions is None or not choices:
            if form is not None:
                self.http.statuses["questions"][f"unreadable page ({says(form.body)})"] += 1
            return
        data = {**fields(questions.group(2)),
                **{name: rng.choice(values) for name, values in choices.items()}}
        gevent.sleep(max(0.0, self.t0 + submits - time.monotonic()))
        category = "burst" if submits >= self.burst_from else "submit"
        # as the form posts: through htmx when it has hx-post (a 200 is the "Answers in" page
        # itself), else plain (the 303, then the GET)
        htmx = HX_POST.search(questions.group(1)) is not None
        headers = phone.headers(**({"HX-Request": "true", "HX-Current-URL": f"/f/{code}"}
                                   if htmx else {}))
        done = self.http.request(category, "POST", f"/f/{code}/submit", headers,
                                 urlencode(data).encode())
        self.answered_at.append(time.monotonic())
        phone.keep_cookie(done)
        if done is not None and (done.status == 303 or htmx and done.status == 200):
            self.accepted.append(code)  # (a phone submits once: a 200 is no "already in")
            submitted = done
            if done.status == 303:
                submitted = self.http.request("submitted", "GET", f"/f/{code}", phone.headers())
                phone.keep_cookie(submitted)
            phone.shows(code, self.number, submitted)  # waits for the close, at this version

    def close(self) -> dict:
        """The round closed: phones stop polling (one still waiting for an answer is given 10 s,
        then dropped); what this round measured."""
        self.closed.set()
        gevent.joinall(self.greenlets, timeout=10)
        unfinished = self.pending  # (a phone stopped below counts itself done)
        gevent.killall(self.greenlets, timeout=5)
        return {**self.http.take(), "accepted": self.accepted, "unfinished": unfinished,
                "last_answer": max(self.answered_at, default=0.0)}


class Sockets:
    """Projector and console websockets: every frame counted, published → received timed."""

    def __init__(self):
        self.clients, self.frames, self.latencies, self.dropped = [], 0, [], 0

    def connect(self, url: str, count: int, cookie: str | None) -> dict:
        failures = Counter()

        def one(_):
            for _attempt in range(3):
                try:
                    ws = websocket.create_connection(url, timeout=10, cookie=cookie,
                                                     skip_utf8_validation=True)
                    ws.recv_data()  # the state sent on connect
                    ws.settimeout(None)
                except Exception as error:
                    failures[f"{type(error).__name__}: {error}"[:80]] += 1
                    continue
                self.clients.append(ws)
                gevent.spawn(self.listen, ws)
                return
        started = time.monotonic()
        Pool(100).map(one, range(count))
        return {"connected": len(self.clients), "connect_s": time.monotonic() - started,
                "failures": dict(failures)}

    def listen(self, ws) -> None:
        wall = time.time
        try:
            while True:
                _, data = ws.recv_data()
                self.frames += 1
                stamp = RENDERED_AT.search(data, 0, 400)
                if stamp:
                    self.latencies.append(round(wall() - float(stamp.group(1)), 4))
        except Exception:
            self.dropped += 1

    def take(self) -> dict:
        taken = {"frames": self.frames, "latencies": self.latencies, "dropped": self.dropped,
                 "connected": len(self.clients)}
        self.frames, self.latencies = 0, []
        return taken


def says(page: bytes) -> str:
    """What a page says, in a few words: its flash, its state's heading or its title."""
    for pattern in SAYS:
        if (found := pattern.search(page)) is not None:
            return html.unescape(found.group(1).decode(errors="replace")).strip()
    return f"{len(page)} bytes, no heading"


def fields(form: bytes) -> dict[str, str]:
    """A form's hidden fields, as a browser sends them back."""
    return {name.decode(): html.unescape(value.decode()) for name, value in HIDDEN.findall(form)}


def when(rng: random.Random, plan: dict) -> tuple[float, float, float]:
    """A phone's open, Start and submit times (s after the round opened): opens over `open_s`,
    answers over `answer_s`, the `burst` share in its last second."""
    opens = rng.uniform(0, plan["open_s"])
    starts = opens + rng.uniform(1, 5)
    if rng.random() < plan["burst"]:
        submits = rng.uniform(plan["answer_s"] - 1, plan["answer_s"])
    else:
        submits = rng.uniform(starts + 3, plan["answer_s"] - 1)
    return opens, starts, max(submits, starts + 3)


def register(http: Http, numbers: list[int], concurrency: int) -> dict:
    """Join through POST /api/register, as the join form's JSON twin."""
    def one(n):
        body = json.dumps({"name": f"Crowd {n}", "email": f"crowd{n}@example.com",
                           "phone": f"+1628{3_000_000 + n:07d}", "consent": True}).encode()
        http.request("register", "POST", "/api/register",
                     {"Content-Type": "application/json"}, body)
    Pool(concurrency).map(one, numbers)
    return http.take()


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def answer(kind: str, payload: dict) -> None:
    sys.stdout.write("ANSWER " + json.dumps({"for": kind, **payload}) + "\n")
    sys.stdout.flush()


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    signal.alarm(3 * 3600)  # bounded, whatever happens to the coordinator
    from bench.stack import raise_open_files
    raise_open_files()
    http, crowd, sockets = Http(host, port), None, Sockets()
    commands = FileObject(sys.stdin.fileno(), "r")
    for line in commands:
        command = json.loads(line)
        kind = command["cmd"]
        if kind == "register":
            answer(kind, register(http, command["numbers"], command["concurrency"]))
        elif kind == "phones":
            crowd = Crowd(http, command["phones"], command["mode"], command["poll_seconds"])
            answer(kind, {"phones": len(crowd.phones)})
        elif kind == "sockets":
            answer(kind, sockets.connect(command["url"], command["count"], command.get("cookie")))
        elif kind == "wait":
            crowd.wait(command["round"], command["plan"], command["seed"])
            answer(kind, {})
        elif kind == "go":
            crowd.open(command["t0"])
            # (its own "go", whenever it comes: `kind` is the next command's by then)
            gevent.spawn(lambda done=crowd.all_in: (done.wait(),
                                                    answer("go", {"all_in": time.monotonic()})))
        elif kind == "close":
            answer(kind, crowd.close())
        elif kind == "frames":
            answer(kind, sockets.take())
        elif kind == "quit":
            answer(kind, {"cpu_s": process_cpu()})
            return


if __name__ == "__main__":
    main()
