"""Configuration from environment variables (a `.env` file is read too)."""
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

from dotenv import load_dotenv

from .colours import ColourError, parse_colour

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = Path(os.environ.get("KNOCKOUT_INSTANCE", ROOT / "instance"))

load_dotenv(ROOT / ".env")


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _optional_flag(name: str) -> bool | None:
    """A flag that may be left unset (None), for a default that depends on other settings."""
    value = os.environ.get(name)
    return None if value is None or value == "" else _flag(name, False)


def links_in_registration(config) -> bool:
    """LINKS_IN_REGISTRATION as set, else on for the `outbox` SMS backend only: a demo or a
    rehearsal has no phones, a real event's players each get their links on their own phone."""
    if config.get("LINKS_IN_REGISTRATION") is not None:
        return bool(config["LINKS_IN_REGISTRATION"])
    return config["SMS_BACKEND"] == "outbox"


def persistent_secret(instance: Path, name: str) -> str:
    """A random secret kept in `instance/`, so it survives restarts of the embedded setup."""
    path = instance / name
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(24)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value


class ConfigError(RuntimeError):
    """A setting Knockout cannot start with; the message says what to set instead."""


def check_database_url(url: str) -> None:
    """SQLite or PostgreSQL (Aurora PostgreSQL-compatible included). MySQL never worked (the submit
    and the close rely on INSERT … RETURNING and PostgreSQL's arrays) and is refused at start."""
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"DATABASE_URL is a {scheme} database: Knockout runs on PostgreSQL (Aurora "
            "PostgreSQL-compatible included), e.g. "
            "postgresql+psycopg://user:password@host/knockout, or on SQLite (leave DATABASE_URL "
            "unset). MySQL is not supported.")


TWILIO_SETTINGS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM")
TWILIO_SID = re.compile(r"AC[0-9a-fA-F]{32}")
# A number (E.164), a messaging service SID, a short code, an alphanumeric sender ID.
TWILIO_SENDER = re.compile(r"\+[1-9][0-9]{6,14}|MG[0-9a-fA-F]{32}|[0-9]{3,8}"
                           r"|(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")


def check_sms_settings(config) -> None:
    """SMS_BACKEND=twilio needs its account, token and sender, each in the shape Twilio gives them:
    refused at start (and by the backend) with what to set, rather than 5,000 failed messages."""
    if config["SMS_BACKEND"] != "twilio":
        return
    missing = [name for name in TWILIO_SETTINGS if not config.get(name)]
    if missing:
        raise ConfigError(f"SMS_BACKEND=twilio needs {', '.join(missing)}: the account SID (AC…) "
                          "and auth token from Twilio's console, and TWILIO_FROM, the sending "
                          "number (+E.164) or a messaging service SID (MG…).")
    if not TWILIO_SID.fullmatch(config["TWILIO_ACCOUNT_SID"]):
        raise ConfigError("TWILIO_ACCOUNT_SID is AC followed by 32 hex digits (Twilio's console, "
                          "Account Info); an API key SID (SK…) is not an account SID.")
    if not TWILIO_SENDER.fullmatch(config["TWILIO_FROM"]):
        raise ConfigError("TWILIO_FROM is a number in E.164 form (+14155550100), a short code, an "
                          "alphanumeric sender ID (up to 11 letters and digits) or a messaging "
                          f"service SID (MG + 32 hex digits), not {config['TWILIO_FROM']!r}.")


def check_alert_settings(config) -> None:
    """ALERT_WEBHOOK_URL is an http(s) URL (or unset: alerts only in the console and the log);
    ALERT_FAILURE_RATE a share between 0 and 1; the intervals positive."""
    url = config["ALERT_WEBHOOK_URL"]
    if url and not re.fullmatch(r"https?://[^\s/]+\S*", url):
        raise ConfigError(f"ALERT_WEBHOOK_URL must be an http(s) URL (a Slack or Discord incoming "
                          f"webhook), not {url!r}; leave it unset for alerts in the console only.")
    if not 0 <= config["ALERT_FAILURE_RATE"] <= 1:
        raise ConfigError("ALERT_FAILURE_RATE is a share of a round's messages, between 0 and 1 "
                          f"(0.2 = 20%), not {config['ALERT_FAILURE_RATE']:g}.")
    for name in ("ALERT_CHECK_SECONDS", "ALERT_NO_WORKER_SECONDS"):
        if config[name] <= 0:
            raise ConfigError(f"{name} must be a number of seconds above 0.")


def check_brand_settings(config) -> None:
    """BRAND_PRIMARY and BRAND_ACCENT are hex colours (or unset: Knockout's own); refused at start
    with what to write, and stored as #rrggbb."""
    for name in ("BRAND_PRIMARY", "BRAND_ACCENT"):
        if config.get(name):
            try:
                config[name] = parse_colour(config[name], name)
            except ColourError as error:
                raise ConfigError(str(error)) from None


class Config:
    """Production and embedded settings; every name here is documented in the README."""

    INSTANCE_PATH = str(INSTANCE)
    # Unset secrets are generated once and kept in instance/ (see create_app).
    SECRET_KEY = os.environ.get("SECRET_KEY", "")
    SQLALCHEMY_DATABASE_URI = (os.environ.get("DATABASE_URL")
                               or f"sqlite:///{INSTANCE / 'knockout.db'}")
    # Each web process keeps DATABASE_POOL_SIZE connections open and opens up to
    # DATABASE_MAX_OVERFLOW more in a rush (closed again when it passes). Sized for a gevent process
    # serving a room of phones at once: a pool smaller than the rush would close and reopen
    # connections on every request (a new PostgreSQL backend each).
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_size": int(os.environ.get("DATABASE_POOL_SIZE", "20")),
                                 "max_overflow": int(os.environ.get("DATABASE_MAX_OVERFLOW", "10"))}
    # A pooled connection idle this long is checked before use (a database restart in a quiet spell
    # goes unnoticed); one reused within a rush is not, saving a round trip per request (a restart
    # mid-rush costs each web process one "press again": the first error renews its whole pool).
    # 0: check every time.
    DATABASE_PING_IDLE_SECONDS = float(os.environ.get("DATABASE_PING_IDLE_SECONDS", "1"))
    # SQLite only: how long a write waits for another writer's lock before giving up (then a 503
    # "try again").
    SQLITE_BUSY_TIMEOUT_MS = int(os.environ.get("SQLITE_BUSY_TIMEOUT_MS", "10000"))
    # Empty means: start (or reuse) the embedded Redis server in instance/.
    REDIS_URL = os.environ.get("REDIS_URL", "")
    STORAGE_URL = os.environ.get("STORAGE_URL") or f"file://{INSTANCE / 'storage'}"
    S3_ENDPOINT_URL = os.environ.get("S3_ENDPOINT_URL") or None
    # How a player gets their stored form: "serve" (Knockout reads it from storage and answers with
    # it) or "redirect" (S3 only: a pre-signed URL minted at that click, valid
    # FORMS_URL_EXPIRY_SECONDS).
    FORMS_DELIVERY = os.environ.get("FORMS_DELIVERY", "serve")
    FORMS_URL_EXPIRY_SECONDS = int(os.environ.get("FORMS_URL_EXPIRY_SECONDS", "300"))
    # How often a worker compares stored forms with the database and repairs any drift.
    FORMS_RECONCILE_SECONDS = float(os.environ.get("FORMS_RECONCILE_SECONDS", "120"))
    SMS_BACKEND = os.environ.get("SMS_BACKEND", "outbox")
    # Messages per second across all workers; 0 = as fast as the backend takes them (outbox).
    SMS_RATE_PER_SECOND = float(os.environ.get("SMS_RATE_PER_SECOND", "0"))
    SMS_SENDER_ID = os.environ.get("SMS_SENDER_ID", "")
    SMS_TYPE = os.environ.get("SMS_TYPE", "Transactional")
    SMS_RESULTS = _flag("SMS_RESULTS", True)  # text players "through" / "out" after each round
    # text each new player their results/QR page link (/r/<code>) once they have joined
    SMS_CONFIRMATION = _flag("SMS_CONFIRMATION", True)
    # Result SMS wait this long after a close; until then (and until the next round starts) a round
    # closed by mistake can be reopened, its elimination reversed, and no one was told anything.
    RESULTS_DELAY_SECONDS = float(os.environ.get("RESULTS_DELAY_SECONDS", "60"))
    # Round links in the answer to POST /api/register and on /r/<code> (admin token: always).
    # Unset: on for the outbox backend, off otherwise (see links_in_registration).
    LINKS_IN_REGISTRATION = _optional_flag("LINKS_IN_REGISTRATION")
    # SMS_BACKEND=twilio (check_sms_settings): the account, its auth token, the sender (a number or
    # a messaging service SID, MG…); TWILIO_API_URL replaces https://api.twilio.com (tests).
    TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
    TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
    TWILIO_FROM = os.environ.get("TWILIO_FROM", "")
    TWILIO_API_URL = os.environ.get("TWILIO_API_URL", "")
    AWS_REGION = os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    SNS_ENDPOINT_URL = os.environ.get("SNS_ENDPOINT_URL") or None
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    ADMIN_API_TOKEN = os.environ.get("ADMIN_API_TOKEN", "")
    ADMIN_PASSWORD = os.environ.get("ADMIN_PASSWORD", "")
    RATELIMIT_ENABLED = _flag("RATELIMIT_ENABLED", True)
    RATELIMIT_HEADERS_ENABLED = True
    # A Redis hiccup must not turn into errors for players: limits pause, requests go on.
    RATELIMIT_SWALLOW_ERRORS = True
    # Submissions arriving this long after a round's time limit still count (requests in flight).
    SUBMIT_GRACE_SECONDS = float(os.environ.get("SUBMIT_GRACE_SECONDS", "3"))
    # Region assumed for phone numbers typed without a +country code.
    PHONE_DEFAULT_REGION = os.environ.get("PHONE_DEFAULT_REGION", "US")
    EVENT_NAME = os.environ.get("EVENT_NAME", "Knockout")
    # The event's own look (quiz/branding.py; the console's Look page wins over these): a logo (a
    # path or an http(s) URL), two hex colours, sponsors (comma-separated names, or a path to a YAML
    # list of {name, logo}). Unset: Knockout's own look.
    EVENT_LOGO = os.environ.get("EVENT_LOGO", "")
    BRAND_PRIMARY = os.environ.get("BRAND_PRIMARY", "")
    BRAND_ACCENT = os.environ.get("BRAND_ACCENT", "")
    SPONSORS = os.environ.get("SPONSORS", "")
    # Largest logo the console takes (it is re-encoded as PNG, at most 1024 px a side).
    LOGO_MAX_BYTES = int(os.environ.get("LOGO_MAX_BYTES", str(2 * 1000 * 1000)))
    # The venue's time zone: times organizers type and read in the console.
    EVENT_TIMEZONE = os.environ.get("EVENT_TIMEZONE", "UTC")
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_CONTENT_LENGTH", str(64 * 1024)))
    # Largest photo a player may send for a photo question (only those rounds' submits take more
    # than the above).
    PHOTO_MAX_BYTES = int(os.environ.get("PHOTO_MAX_BYTES", str(8 * 1000 * 1000)))
    # The most pixels a photo may decode to (a JPEG decodes at 1/2, 1/4 or 1/8 scale when that still
    # gives 2048 px, so phones' 48 MP photos fit), and how many photos one web process decodes at
    # once (each takes up to ~15 bytes a pixel while it does; the others wait their turn).
    PHOTO_MAX_PIXELS = int(os.environ.get("PHOTO_MAX_PIXELS", str(16_000_000)))
    PHOTO_DECODES_PER_PROCESS = int(os.environ.get("PHOTO_DECODES_PER_PROCESS", "1"))
    # Reverse proxies in front (nginx = 1, a load balancer before nginx = 2) whose X-Forwarded-For
    # and X-Forwarded-Proto are trusted; 0 trusts none. Rate limits key on the address this yields.
    TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES", "0"))
    # A phone left open all day must still be able to submit: no CSRF token expiry.
    WTF_CSRF_TIME_LIMIT = None
    # Cookies: HttpOnly, SameSite=Lax, and Secure when PUBLIC_BASE_URL is https (create_app).
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_HTTPONLY = True
    # An organizer's "remember me" (Flask-Login) lasts an event, not a year; logout and a new
    # password revoke it (and the session) everywhere.
    REMEMBER_COOKIE_DURATION = timedelta(hours=float(os.environ.get("ADMIN_REMEMBER_HOURS", "36")))
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_HTTPONLY = True
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    # "json" for one JSON object per line, with request ids
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")
    # Ops alerts (quiz/alerts.py): a Slack- or Discord-compatible webhook, how often each web
    # process and worker looks, and when to speak: no worker for this long, a round's messages
    # failing at more than this share (once at least ALERT_FAILURE_MIN failed), a disk with less
    # free.
    ALERT_WEBHOOK_URL = os.environ.get("ALERT_WEBHOOK_URL", "")
    ALERT_CHECK_SECONDS = float(os.environ.get("ALERT_CHECK_SECONDS", "10"))
    ALERT_NO_WORKER_SECONDS = float(os.environ.get("ALERT_NO_WORKER_SECONDS", "30"))
    ALERT_FAILURE_RATE = float(os.environ.get("ALERT_FAILURE_RATE", "0.2"))
    ALERT_FAILURE_MIN = int(os.environ.get("ALERT_FAILURE_MIN", "10"))
    ALERT_DISK_FREE_PERCENT = float(os.environ.get("ALERT_DISK_FREE_PERCENT", "5"))
    # How often a worker looks for lost work (a Redis outage, a dead worker) and hands it out again.
    RECONCILE_SECONDS = float(os.environ.get("RECONCILE_SECONDS", "30"))
    # Days after the last round before `flask --app quiz privacy shred` may remove personal data.
    RETENTION_DAYS = float(os.environ.get("RETENTION_DAYS", "30"))
    # Round 1 only for players who checked in at the venue (badge QR or code at the kiosk): the
    # others get no round-1 link and can't start it. Off by default.
    CHECKIN_REQUIRED = _flag("CHECKIN_REQUIRED", False)
    # Knocked-out players may still play the later rounds in a shadow league, not ranked for the
    # prize (disqualified players excepted). Off: their links just say they are out.
    SHADOW_LEAGUE = _flag("SHADOW_LEAGUE", True)
    # The winner is the best-ranked player of the last round who has checked in at the venue. Off by
    # default.
    PRIZE_REQUIRES_CHECKIN = _flag("PRIZE_REQUIRES_CHECKIN", False)
    # How long a browser may reuse a report page (/r/<code>) without asking again; it revalidates by
    # ETag.
    REPORT_MAX_AGE = int(os.environ.get("REPORT_MAX_AGE", "15"))
    # Waiting phones poll one shared status (GET /api/status, quiz/waiting.py): each web process
    # keeps its copy this long (nginx may cache it as long), then reads it again from Redis.
    STATUS_CACHE_SECONDS = float(os.environ.get("STATUS_CACHE_SECONDS", "1"))
    # Live updates: at most one frame per topic per this many seconds, however busy it gets.
    LIVE_TICK_SECONDS = float(os.environ.get("LIVE_TICK_SECONDS", "0.5"))
    # Websockets one web process holds at once (projectors, consoles): past it /ws answers 503 and
    # the page retries. A total, never per address: a venue's phones share one.
    WS_MAX_SOCKETS_PER_PROCESS = int(os.environ.get("WS_MAX_SOCKETS_PER_PROCESS", "1000"))
    # flask-sock's options for simple-websocket's Server: /ws only sends, so a client's message past
    # this many bytes closes its socket (1009) before it is buffered; smaller ones are dropped.
    SOCK_SERVER_OPTIONS = {"max_message_size": 1024}


class TestConfig(Config):
    """Settings for the test suite; the fixtures fill in database and Redis."""

    TESTING = True
    SECRET_KEY = "test-secret"
    ADMIN_API_TOKEN = "test-token"
    ADMIN_PASSWORD = "test-password"
    PUBLIC_BASE_URL = "http://quiz.test"
    RATELIMIT_ENABLED = False
    SUBMIT_GRACE_SECONDS = 1.0
    # Results at once, as the suite's close tests expect; tests of the delay and reopening set it.
    RESULTS_DELAY_SECONDS = 0.0
