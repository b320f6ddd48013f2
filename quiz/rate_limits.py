"""Flask-Limiter's Redis storage in one round trip a limited request.

A limited request (a submit, a Start, a registration) costs the stock storage three Redis round
trips: the hit (a script: INCRBY, EXPIRE), then a GET and a TTL for the `X-RateLimit-*` headers;
under gevent each is a yield while other requests run. Here the hit's script answers the count
and the time left together, and the headers of the same request are read from that answer: one
round trip, the same limits, the same headers. Anything not just counted in this request (another
request's key, the CLI) is read from Redis as before.

Used for the default limiter storage (`RATELIMIT_STORAGE_URI` unset: the app's Redis); a URL set
by hand keeps the stock storage.

`count_hit` counts a request against a route's limit outside Flask (the submit's fast path,
quiz/web/submit_path.py): the same key, the same Redis counter, the same headers as the route's
decorator, so one link gets its limit once whichever way its requests go.
"""
import time
from functools import lru_cache

from flask import g, has_app_context, request
from flask_limiter import HeaderNames, Limiter
from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from werkzeug.http import http_date

SCHEME = "knockout+"
# A player's submits per link: POST /f/<code>/submit's decorator and its fast path count against
# this one limit.
SUBMIT_LIMIT = "30 per minute"
# A player's Start presses per link: POST /f/<code>/start's decorator and its fast path
# (quiz/web/start_path.py) count against this one limit.
START_LIMIT = "30 per minute"
# Set in the WSGI environ by a fast path that counted the request before handing it to Flask: the
# route's decorator then leaves it alone (counted once). Not a header: no client can set it.
COUNTED = "knockout.rate_limit_counted"
# INCRBY and EXPIRE as the stock script does, answering the count and the seconds left.
INCR_EXPIRE_TTL = """
local amount = tonumber(ARGV[2])
local current = redis.call("incrby", KEYS[1], amount)
if tonumber(current) == amount then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("ttl", KEYS[1])}
"""


class OneTripRedisStorage(RedisStorage):
    """RedisStorage whose `incr` also answers the window stats of the key it counted."""

    STORAGE_SCHEME = [SCHEME + "redis", SCHEME + "rediss", SCHEME + "redis+unix"]

    def __init__(self, uri: str, **options) -> None:
        super().__init__(uri.removeprefix(SCHEME), **options)

    def initialize_storage(self, uri: str) -> None:
        super().initialize_storage(uri)
        self.lua_incr_expire_ttl = self.get_connection().register_script(INCR_EXPIRE_TTL)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        current, ttl = self.lua_incr_expire_ttl([self.prefixed_key(key)], [expiry, amount])
        if has_app_context():  # this request's headers read it (g: one request's)
            g.setdefault("_rate_limit_counts", {})[key] = (
                int(current), max(int(ttl), 0) + time.time())
        return int(current)

    def _counted(self, key: str) -> tuple[int, float] | None:
        return g.get("_rate_limit_counts", {}).get(key) if has_app_context() else None

    def get(self, key: str) -> int:
        counted = self._counted(key)
        return counted[0] if counted else super().get(key)

    def get_expiry(self, key: str) -> float:
        counted = self._counted(key)
        return counted[1] if counted else super().get_expiry(key)


def storage_uri(redis_url: str) -> str:
    """The limiter's storage URL for the app's Redis (this storage; the unix-socket scheme is
    spelled differently)."""
    if redis_url.startswith("unix://"):
        return SCHEME + "redis+unix://" + redis_url[len("unix://"):]
    return SCHEME + redis_url


def counted_before() -> bool:
    """The route decorator's `exempt_when`: this request was counted already, before Flask."""
    return bool(request.environ.get(COUNTED))


@lru_cache(maxsize=8)
def _item(limit: str) -> RateLimitItem:
    return parse(limit)


def count_hit(limiter: Limiter, limit: str, endpoint: str, key: str
              ) -> tuple[bool, list[tuple[str, str]]]:
    """Count one request against `limit` as Flask-Limiter's decorator on `endpoint` (its key_func
    answering `key`) does: whether it is within the limit, and the `X-RateLimit-*` and Retry-After
    headers the app adds to its response. Needs an app context, not a request."""
    item, args = _item(limit), [key, endpoint]
    if limiter._key_prefix:
        args = [limiter._key_prefix, *args]
    within = limiter.limiter.hit(item, *args)
    if not limiter._headers_enabled:
        return within, []
    reset, remaining = limiter.limiter.get_window_stats(item, *args)  # this storage: no round trip
    reset_at, names = int(reset + 1), limiter._header_mapping
    retry_after = (http_date(reset_at) if limiter._retry_after == "http-date"
                   else str(int(reset_at - time.time())))
    return within, [(names[HeaderNames.LIMIT], str(item.amount)),
                    (names[HeaderNames.REMAINING], str(remaining)),
                    (names[HeaderNames.RESET], str(reset_at)),
                    (names[HeaderNames.RETRY_AFTER], retry_after)]
