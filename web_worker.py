"""gunicorn's gevent worker, accepting up to ACCEPT_PER_PASS new connections on each pass of a web
process's event loop instead of one (gunicorn.conf.py's `worker_class`).

With more than one worker, gunicorn gives each process's gevent server `max_accept = 1`, so that one
process does not take every connection of a wave. A pass of the loop runs every request that is
ready, though: while a room's readers keep a process busy (waiting phones polling, a projector, a
load balancer's /ping on keep-alive connections), each pass costs them all, and a round end's
hundreds of new connections get in one a pass — the submits wait in the listen queue while the
readers are served. A few a pass still leaves most of a wave to the other processes, whose loops
wake on the same listening socket.
"""
from gevent.server import StreamServer
from gunicorn.workers import ggevent

ACCEPT_PER_PASS = 16


class Server(StreamServer):
    """gevent's server, accepting ACCEPT_PER_PASS connections a pass whatever gunicorn set."""

    def start(self):
        self.max_accept = ACCEPT_PER_PASS
        super().start()


class Worker(ggevent.GeventWorker):
    """gunicorn's gevent worker with `Server` as its server (gunicorn makes it in `run`)."""

    def run(self):
        ggevent.StreamServer = Server  # this process's gevent worker module: the forked worker's
        super().run()
