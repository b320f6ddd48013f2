"""gunicorn's gevent worker (gunicorn.conf.py's `worker_class`), changed in these ways in the forked
web process:

- `Server`: up to ACCEPT_PER_PASS new connections on each pass of the process's event loop instead
  of one. With more than one worker, gunicorn gives each process's gevent server `max_accept = 1`,
  so that one process does not take every connection of a wave. A pass of the loop runs every
  request that is ready, though: while a room's readers keep a process busy (waiting phones
  polling, a projector, a load balancer's /ping on keep-alive connections), each pass costs them
  all, and a round end's hundreds of new connections got in one a pass — the submits waited in the
  listen queue while the readers were served (traced at 16 a pass: under 32 readers a wave of 256
  connections took 0.4–0.8 s to be taken in, the accept queue 240 long at its start).
- `Server` again, what keeps one process from taking the whole wave: while ACCEPT_HOLD submits or
  more are in flight in its process (a round's rush, quiz/web/priority.py counts them) or on their
  way (`arriving`: connections taken in whose first request is not read yet, ARRIVING_SECONDS at
  most), it takes no more and leaves new connections to the other processes, looking again every
  HOLD_CHECK_SECONDS. It looks before every accept, so a pass takes at most up to the hold. Under
  read load a wave went to one process otherwise: the process in a rush holds its reads
  (quiz/web/priority.py), so its loop turns fast and takes connection after connection, while the
  other keeps serving its readers (traced: 256 of 256 connections in one process, the burst
  drained 1.5–2× slower than alone); and the accepts run ahead of the reads, so the submits in
  flight alone reached the hold only after it had taken far more. A process at the hold is
  saturated already; connections none takes wait in the listen queue, as they would have in the
  process.
- `Server` once more, what shares a wave of new connections between the processes: a process
  that has taken in ARRIVING_HOLD connections whose first request is not read yet takes no more
  until some are (or ARRIVING_SECONDS passed), so the others take the rest. Without it, whichever
  process woke first took a whole wave of keep-alive connections (64 of 64 in half of the bench's
  runs, and as an upstream's keep-alive pool would open them), then served every request on them
  with one core while the other idled. It also bounds a pass to ARRIVING_HOLD connections.
- `Response`: a response's headers go out with its first body bytes in one send, not in a send of
  their own (gunicorn's), so a page costs one syscall and one TCP segment instead of two. Not a
  byte on the wire changes.
"""
import sys
import time

from gevent.server import StreamServer
from gunicorn import util
from gunicorn.http import wsgi
from gunicorn.workers import ggevent

ACCEPT_HOLD = 128  # submits in flight or on their way past which new connections go to the others
ACCEPT_PER_PASS = ACCEPT_HOLD  # the hold, checked before each accept, is what bounds a pass
HOLD_CHECK_SECONDS = 0.005
# A connection taken in this recently whose first request has not been read yet counts toward the
# hold as a submit on its way; one idle longer (a slow client, a socket that never sends) no more.
ARRIVING_SECONDS = 0.5
# Connections taken in whose first request is not read yet past which a process takes no more for
# now, whatever its submits: a wave of new connections is shared between the processes.
ARRIVING_HOLD = 32

# This process's connections taken in whose first request is not read yet: socket → when taken in
# (Server.do_handle adds; Worker takes one out at its first request or its close). A dict keeps
# them in the order they came, so the oldest is first.
_arriving: dict = {}


def arriving() -> int:
    """Connections this process took in within ARRIVING_SECONDS whose first request is not read
    yet."""
    oldest = time.monotonic() - ARRIVING_SECONDS
    while _arriving:
        sock, since = next(iter(_arriving.items()))
        if since >= oldest:
            break
        del _arriving[sock]
    return len(_arriving)


def arrived(sock) -> None:
    """The connection no longer counts as arriving: its first request is read (in flight now, if
    a submit), or it closed."""
    _arriving.pop(sock, None)


class Server(StreamServer):
    """gevent's server, accepting ACCEPT_PER_PASS connections a pass whatever gunicorn set, none
    while its process has ACCEPT_HOLD submits in flight or on their way, or ARRIVING_HOLD
    connections on their way."""

    _recheck = None  # the timer that looks again while accepting is held

    def start(self):
        self.max_accept = ACCEPT_PER_PASS
        # the count of the app this process loaded, when it is Knockout's (nothing is imported
        # here: not in gunicorn's master, not for another app)
        priority = sys.modules.get("quiz.web.priority")
        self.submits_in_flight = priority.submits_in_flight if priority else lambda: 0
        super().start()

    def do_read(self):
        """gevent's accept of one waiting connection (its pass's loop calls it up to max_accept
        times), unless this process is in a rush that big or has that many connections on their
        way: then stop watching the socket and look again in HOLD_CHECK_SECONDS (None ends the
        pass)."""
        waiting = arriving()
        if waiting >= ARRIVING_HOLD or self.submits_in_flight() + waiting >= ACCEPT_HOLD:
            self.stop_accepting()
            if self._recheck is None:
                self._recheck = self.loop.timer(HOLD_CHECK_SECONDS)
                self._recheck.start(self._look_again)
            return None
        return super().do_read()

    def do_handle(self, client, address):
        _arriving[client] = time.monotonic()
        super().do_handle(client, address)

    def _look_again(self):
        self._recheck.close()
        self._recheck = None
        self._start_accepting_if_started()  # (a stopped server stays stopped)


def send_all(sock, data) -> None:
    """`sock.sendall(data)` without gevent's getsockopt(SO_SNDBUF) a call (a syscall of its own,
    to size the chunks it sends a big buffer in): send, and send the rest while some is left."""
    view = memoryview(data)
    while view:
        view = view[sock.send(view):]


class Response(wsgi.Response):
    """gunicorn's HTTP/1 response, whose headers wait for the first body bytes and go out with them
    in one send: the same bytes in the same order, one send fewer. Its sends are `send_all`'s.

    The headers are made when gunicorn's would be sent (their Date and Connection are those of that
    moment) and wait in `_head`. They go out with the first non-empty body bytes, or at `close` (an
    empty body, HEAD, 204/304: with the chunked end if any), or before a file is sent. Whoever asks
    `headers_sent` (gunicorn's worker before it cuts a connection whose app raised, start_response
    with exc_info, the 103 early hints) gets them sent first, so it sees what it would have seen
    with gunicorn's own response: headers on the wire.
    """

    _head = None  # the headers' bytes, made and waiting for the first body bytes
    _committed = False  # the headers made (waiting or sent): gunicorn's `headers_sent`
    _unbuffered = False  # while a file is sent: headers go out when made

    @property
    def headers_sent(self) -> bool:
        self._flush()
        return self._committed

    @headers_sent.setter
    def headers_sent(self, value: bool):
        self._committed = value  # gunicorn's __init__ sets it False

    def send_headers(self):
        """gunicorn's headers, made now and kept until the first body bytes."""
        if not self._committed:
            lines = self.default_headers()
            lines.extend(["%s: %s\r\n" % (name, value) for name, value in self.headers])
            self._head = util.to_bytestring("%s\r\n" % "".join(lines), "latin-1")
            self._committed = True
        if self._unbuffered:
            self._flush()

    def _flush(self):
        """The waiting headers, sent on their own."""
        if self._head is not None:
            head, self._head = self._head, None
            send_all(self.sock, head)

    def _emit_body(self, data):
        if self._head is not None and not data:
            return  # an empty item (a first one b"", the content-length reached): the headers wait
        if self.chunked:  # gunicorn's framing (util.write_chunk)
            data = b"".join([b"%X\r\n" % len(data), data, b"\r\n"])
        head, self._head = self._head or b"", None
        send_all(self.sock, head + data if head else data)

    def sendfile(self, respiter):
        """gunicorn's: the headers, then the file by the socket's sendfile. The headers go out on
        their own, before the file, as gunicorn sends them."""
        self._unbuffered = True
        try:
            return super().sendfile(respiter)
        finally:
            self._unbuffered = False

    def close(self):
        if not self._committed:
            self.send_headers()
        end = b"0\r\n\r\n" if self.chunked else b""  # util.write_chunk(sock, b"")
        head, self._head = self._head or b"", None
        send_all(self.sock, head + end)


class Worker(ggevent.GeventWorker):
    """gunicorn's gevent worker with `Server` as its server (gunicorn makes it in `run`) and
    `Response` as its HTTP/1 responses (gunicorn's `wsgi.create` makes them)."""

    def handle(self, listener, client, addr):
        try:
            super().handle(listener, client, addr)
        finally:
            arrived(client)

    def handle_request(self, listener_name, req, sock, addr):
        arrived(sock)
        super().handle_request(listener_name, req, sock, addr)

    def run(self):
        # this process's modules: the forked worker's
        ggevent.StreamServer = Server
        wsgi.Response = Response
        super().run()
