"""Security headers on every response, the rate-limit keys (a venue shares one NAT address), and
input refused before it reaches a view: garbled forms, deeply nested JSON, ids past a column."""
import hashlib
from urllib.parse import unquote_to_bytes

from flask import Flask, abort, request, session
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

# No inline script and no eval (htmx runs with allowEval false); styles only from our files.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")


def security_headers(path: str) -> list[tuple[str, str]]:
    """What every response carries unless it says otherwise (also for a fast path's answer)."""
    # Personal links carry their credential in the path: never leak it to another site.
    headers = [("Content-Security-Policy", CSP), ("X-Content-Type-Options", "nosniff"),
               ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer")]
    if path.startswith(("/f/", "/r/", "/admin", "/api/")):
        headers.append(("Cache-Control", "no-store"))
    return headers


def add_security_headers(response):
    """Each security header the response doesn't set itself, added after its own (as `setdefault`
    would: whose every miss costs Werkzeug an exception)."""
    headers = response.headers
    given = {name.lower() for name, _ in headers}
    for name, value in security_headers(request.path):
        if name.lower() not in given:
            headers.add(name, value)
    return response


def link_key() -> str:
    """Rate-limit key for a player's actions: their link, whatever address they come from."""
    return "link:" + (request.view_args or {}).get("code", "")


def registration_key() -> str:
    """Rate-limit key for joining: the address together with the phone typed (one NAT, many
    players)."""
    data = request.get_json(silent=True) if request.is_json else request.form
    phone = (str((data or {}).get("phone", ""))[:32]
             if isinstance(data, dict) or hasattr(data, "get") else "")
    return f"register:{request.remote_addr}:{phone}"


def form_session_key() -> str:
    """Rate-limit key for a browser's form checks: its session, named by a digest of the CSRF
    secret it holds (the secret itself stays out of Redis)."""
    secret = session.get("csrf_token")
    if not secret:
        return f"session:{request.remote_addr}"
    return "session:" + hashlib.sha256(secret.encode()).hexdigest()[:32]


def login_key() -> str:
    """Rate-limit key for console logins: the account tried together with the address."""
    username = request.form.get("username", "admin")[:80].strip().lower()
    return f"login:{request.remote_addr}:{username}"


def reject_garbled_forms():
    """A form body that isn't UTF-8 would reach the database as mojibake: refuse it with what to
    do."""
    if (request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded"
            and garbled(request.get_data(cache=True))):
        abort(400, "That form arrived garbled (its text isn't UTF-8). Reload the page and send it "
                   "again.")


def garbled(body: bytes) -> bool:
    """A form body (urlencoded) whose text isn't UTF-8."""
    try:
        unquote_to_bytes(body.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


# Deeper than any body our API takes; Python's parser would hit its recursion limit (a 500) on
# thousands of levels.
JSON_MAX_DEPTH = 32
OPEN, CLOSE, QUOTE, BACKSLASH = b"[{", b"]}", ord('"'), ord("\\")


def nested_deeper_than(body: bytes, limit: int) -> bool:
    """Whether a JSON text's brackets nest deeper than `limit` (brackets in strings don't count),
    found in one pass without parsing it."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # every body we take
    depth, in_string, escaped = 0, False, False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == BACKSLASH:
                escaped = True
            elif byte == QUOTE:
                in_string = False
        elif byte == QUOTE:
            in_string = True
        elif byte in OPEN:
            depth += 1
            if depth > limit:
                return True
        elif byte in CLOSE:
            depth -= 1
    return False


def reject_deep_json():
    """A JSON body nested past JSON_MAX_DEPTH is refused before anything parses it."""
    if request.is_json and nested_deeper_than(request.get_data(cache=True), JSON_MAX_DEPTH):
        abort(400, f"That JSON is nested too deeply (more than {JSON_MAX_DEPTH} levels). "
                   "Send a flat object, e.g. {\"name\": \"Ada\", ...}.")


class BoundedInt(IntegerConverter):
    """`<int:…>` in a URL: a number a database integer column can hold (PostgreSQL's `integer`),
    else a 404, never an overflow error from the database."""

    def __init__(self, url_map, fixed_digits: int = 0, min: int | None = None,
                 max: int | None = None, signed: bool = False) -> None:
        super().__init__(url_map, fixed_digits, min, 2**31 - 1 if max is None else max, signed)


class SessionCookies(SecureCookieSessionInterface):
    """Flask's signed session cookie, its signer built once per secret key: Flask builds a new one
    for every request (for a request without a cookie too: an API call, a /ping), which cost more
    than the rest of opening a session. The same keys, salt and signature: the same cookies."""

    def __init__(self):
        self.signers: dict[tuple, object] = {}  # (key, fallbacks) → serializer; one in practice

    def get_signing_serializer(self, app: Flask):
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        signer = self.signers.get(keys)
        if signer is None:
            signer = self.signers[keys] = super().get_signing_serializer(app)
        return signer


def init_app(app: Flask) -> None:
    app.session_interface = SessionCookies()  # the app's own (Flask's default is shared by all)
    hops = app.config["TRUSTED_PROXIES"]
    if hops:
        # behind nginx / a load balancer: the player's address, not the proxy's, for rate limits
        # and logs
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    app.before_request(reject_garbled_forms)
    app.before_request(reject_deep_json)
    app.after_request(add_security_headers)
