"""gunicorn's gevent worker (gunicorn.conf.py's `worker_class`), changed in two ways in the forked
web process:

- `Server`: up to ACCEPT_PER_PASS new connections on each pass of the process's event loop instead
  of one. With more than one worker, gunicorn gives each process's gevent server `max_accept = 1`,
  so that one process does not take every connection of a wave. A pass of the loop runs every
  request that is ready, though: while a room's readers keep a process busy (waiting phones
  polling, a projector, a load balancer's /ping on keep-alive connections), each pass costs them
  all, and a round end's hundreds of new connections get in one a pass — the submits wait in the
  listen queue while the readers are served. A few a pass still leaves most of a wave to the other
  processes, whose loops wake on the same listening socket.
- `Server` again: while ACCEPT_HOLD submits or more are in flight in its process (a round's rush,
  quiz/web/priority.py counts them), it leaves new connections to the other processes, looking
  again every HOLD_CHECK_SECONDS. Under read load a wave of submits' connections otherwise went
  to one process: the process in a rush holds its reads (quiz/web/priority.py), so its loop turns
  fast and takes connection after connection, while the other kept serving its readers with none
  of the wave (traced: 256 of 256 connections in one process, the burst drained 1.5–2× slower
  than alone). A process at the hold is saturated already; connections none takes wait in the
  listen queue, as they would have in the process.
- `Response`: a response's headers go out with its first body bytes in one send, not in a send of
  their own (gunicorn's), so a page costs one syscall and one TCP segment instead of two. Not a
  byte on the wire changes.
"""
import sys

from gevent.server import StreamServer
from gunicorn import util
from gunicorn.http import wsgi
from gunicorn.workers import ggevent

ACCEPT_PER_PASS = 16
ACCEPT_HOLD = 128  # submits in flight in a process past which new connections go to the others
HOLD_CHECK_SECONDS = 0.005


class Server(StreamServer):
    """gevent's server, accepting ACCEPT_PER_PASS connections a pass whatever gunicorn set, none
    while its process has ACCEPT_HOLD submits in flight."""

    _recheck = None  # the timer that looks again while accepting is held

    def start(self):
        self.max_accept = ACCEPT_PER_PASS
        # the count of the app this process loaded, when it is Knockout's (nothing is imported
        # here: not in gunicorn's master, not for another app)
        priority = sys.modules.get("quiz.web.priority")
        self.submits_in_flight = priority.submits_in_flight if priority else lambda: 0
        super().start()

    def _do_read(self):
        """gevent's (the listening socket is readable), unless this process is in a rush that
        big: then stop watching the socket and look again in HOLD_CHECK_SECONDS."""
        if self.submits_in_flight() >= ACCEPT_HOLD:
            self.stop_accepting()
            if self._recheck is None:
                self._recheck = self.loop.timer(HOLD_CHECK_SECONDS)
                self._recheck.start(self._look_again)
            return
        super()._do_read()

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

    def run(self):
        # this process's modules: the forked worker's
        ggevent.StreamServer = Server
        wsgi.Response = Response
        super().run()
