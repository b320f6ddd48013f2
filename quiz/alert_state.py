"""Where ops alerts keep what they know (quiz/alerts.py has the rule): the instance folder's
`alerts.json`, shared by the processes of that folder under a lock, and the claims in Redis that
let one instance folder speak for an incident while Redis answers."""
import fcntl
import json
import logging
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import redis as redis_lib

log = logging.getLogger(__name__)

CLAIM = "knockout:alerts:claim:"  # + incident key → JSON {group, since, text}, while it lasts
EVENTS_KEY = "knockout:alerts:events"  # the latest alerts and recoveries, newest first
KEEP_EVENTS = 30


class Ledger:
    """`alerts.json` in the instance folder, changed under an exclusive lock and written whole."""

    def __init__(self, folder: Path):
        self.path, self.lock_path = folder / "alerts.json", folder / "alerts.lock"

    def read(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError:
            log.warning("alerts: %s unreadable, starting afresh", self.path)
            return {}

    @contextmanager
    def locked(self):
        with open(self.lock_path, "a") as lock:
            while True:  # without blocking: a gevent web process's other greenlets go on
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    time.sleep(0.01)
            try:
                state = self.read()
                yield state
                descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".alerts.")
                with os.fdopen(descriptor, "w") as handle:
                    json.dump(state, handle)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


class Shared:
    """Claims in Redis while it answers; after an error this pass goes on without it."""

    def __init__(self, client, group: str, ttl: int):
        self.client, self.group, self.ttl = client, group, ttl

    def _do(self, operation):
        if self.client is None:
            return None
        try:
            return operation(self.client)
        except redis_lib.RedisError as error:
            log.warning("alerts: Redis failed mid-check (%s); the file decides", error)
            self.client = None
            return None

    def _owner(self, key: str) -> str | None:
        raw = self._do(lambda r: r.get(CLAIM + key))
        return json.loads(raw)["group"] if raw else None

    def claim(self, key: str, incident: dict) -> tuple[bool, bool]:
        """(ours, new): ours to announce; new unless this folder had claimed it already."""
        value = json.dumps({"group": self.group, **incident})
        if self._do(lambda r: r.set(CLAIM + key, value, nx=True, ex=self.ttl)):
            return True, True
        if self.client is None:
            return True, True  # Redis is down: the file decides
        return self._owner(key) == self.group, False

    def keep(self, key: str, incident: dict) -> bool:
        """Our claim lives on (made again if Redis lost it); False if another folder holds it."""
        owner = self._owner(key)
        if self.client is None or owner == self.group:
            self._do(lambda r: r.expire(CLAIM + key, self.ttl))
            return True
        return self.claim(key, incident)[0] if owner is None else False

    def release(self, key: str) -> None:
        if self._owner(key) == self.group:
            self._do(lambda r: r.delete(CLAIM + key))

    def note(self, event: dict) -> None:
        self._do(lambda r: r.pipeline().lpush(EVENTS_KEY, json.dumps(event))
                 .ltrim(EVENTS_KEY, 0, KEEP_EVENTS - 1).execute())
