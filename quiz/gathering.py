"""One greenlet a process that serves many requests' items a group at a time: the group commit's
writer (quiz/group_commit.py) and the submits' grouped read (quiz/submit_read.py).

A request hands its item and waits; the process's greenlet gathers what arrives meanwhile, takes
at most `most` items, handles them together, and answers each waiting request. The greenlet starts
on first use in each process (a server that forks after create_app gets its own), and again after
it was killed (a worker stopping). Only under gevent: gevent is imported where it is used.
"""
import os


class Gathering:
    """`hand(item)` waits for the group that takes it; a subclass says how a group gathers
    (`gather`), how it is handled (`handle`: it sets each waiter), how many it takes (`most`)."""

    most = 500

    def __init__(self):
        self.queue: list = []
        self.pid: int | None = None

    def hand(self, item):
        """What `handle` answered for `item` (raises what it set as the item's error)."""
        from gevent.event import AsyncResult
        self._ensure()
        waiter = AsyncResult()
        self.queue.append((item, waiter))
        self.due.set()
        return waiter.get()

    def _ensure(self) -> None:
        if self.pid == os.getpid():
            return
        import gevent
        from gevent.event import Event
        self.pid, self.queue, self.due = os.getpid(), [], Event()
        gevent.spawn(self._run)

    def _run(self) -> None:
        self.started()
        try:
            while True:
                self.due.wait()
                self.gather()
                group, self.queue = self.queue[:self.most], self.queue[self.most:]
                if not self.queue:
                    self.due.clear()
                if group:
                    self.handle(group)
        finally:  # killed: the next item starts another greenlet
            self.pid = None

    def started(self) -> None:
        """In the greenlet, before its first group (its own context)."""

    def gather(self) -> None:
        """Wait for the group to fill (gevent.sleep): the requests in flight reach `hand`."""
        raise NotImplementedError

    def handle(self, group: list) -> None:
        """Every (item, waiter) of the group gets its outcome: waiter.set(...) or set_exception."""
        raise NotImplementedError
