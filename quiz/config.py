"""Configuration from environment variables (a `.env` file is read too)."""
import os
import secrets
from datetime import timedelta
from pathlib import Path

from dotenv import load_dotenv


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


def _optional_seconds(name: str) -> float | None:
    """A number of seconds that may be left unset (None: a default worked out per round)."""
    value = os.environ.get(name, "").strip()
    return float(value) if value else None


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


def pool_options(database_url: str) -> dict:
    """The engine's pool: each web process keeps up to DATABASE_POOL_SIZE connections open (opened
    as a rush needs them, kept after it) and opens up to DATABASE_MAX_OVERFLOW more, each closed
    again as soon as it is handed back while the pool is full. Sized for a gevent process serving a
    room of phones at once. On PostgreSQL all 30 are kept: a connection closed after a rush is a new
    backend in the next, whose every statement is planned afresh until it is prepared and its plan
    cached (~11 plans of each; on a 2-core box planning the herd's reads cost PostgreSQL more than
    running them). On SQLite 20 + 10 as before: with 30 kept, the 10,000-player event's Start round
    measured slower there (295 and 355 ms against 65 and 71; not explained)."""
    kept, extra = ("30", "0") if database_url.startswith("postgresql") else ("20", "10")
    return {"pool_size": int(os.environ.get("DATABASE_POOL_SIZE", kept)),
            "max_overflow": int(os.environ.get("DATABASE_MAX_OVERFLOW", extra))}


class Config:
    """Production and embedded settings; every name here is documented in the README."""

    INSTANCE_PATH = str(INSTANCE)
    # How staff passwords are hashed: werkzeug's scrypt (~0.1 s a hash). Not read from the
    # environment; the suite's TestConfig sets a cheap method.
    PASSWORD_HASH_METHOD = "scrypt"
    # Unset secrets are generated once and kept in instance/ (see create_app).
    SECRET_KEY = os.environ.get("SECRET_KEY", "")
    SQLALCHEMY_DATABASE_URI = (os.environ.get("DATABASE_URL")
                               or f"sqlite:///{INSTANCE / 'knockout.db'}")
    SQLALCHEMY_ENGINE_OPTIONS = pool_options(SQLALCHEMY_DATABASE_URI)
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
    # Once a closed round can no longer be reopened, the projector reveals its questions one by one
    # before its leaderboard (quiz/reveal.py; REVEAL_ANSWERS=false: the leaderboard at once), this
    # many seconds each, or 0 to step them from the console.
    REVEAL_ANSWERS = _flag("REVEAL_ANSWERS", True)
    REVEAL_SECONDS_PER_QUESTION = float(os.environ.get("REVEAL_SECONDS_PER_QUESTION", "0"))
    # Round links in the answer to POST /api/register and on /r/<code> (admin token: always).
    # Unset: on for the outbox backend, off otherwise (see links_in_registration).
    LINKS_IN_REGISTRATION = _optional_flag("LINKS_IN_REGISTRATION")
    # SMS_BACKEND=twilio (check_sms_settings): the account, its auth token, the sender (a number or
    # a messaging service SID, MG…); TWILIO_API_URL replaces https://api.twilio.com (tests).
    TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
    TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
    TWILIO_FROM = os.environ.get("TWILIO_FROM", "")
    TWILIO_API_URL = os.environ.get("TWILIO_API_URL", "")
    # Email (confirmation, a failed link SMS's fallback, final results): outbox (kept in the
    # console), smtp or ses; checked at start by check_email_config.
    EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "outbox")
    EMAIL_FROM = os.environ.get("EMAIL_FROM", "")
    # Emails per second across all workers; 0 = as fast as the backend takes them.
    EMAIL_RATE_PER_SECOND = os.environ.get("EMAIL_RATE_PER_SECOND", "0")
    SMTP_HOST = os.environ.get("SMTP_HOST", "")
    SMTP_PORT = os.environ.get("SMTP_PORT", "")  # empty: 587 for starttls, 465 ssl, 25 none
    SMTP_USERNAME = os.environ.get("SMTP_USERNAME", "")
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD", "")
    SMTP_SECURITY = os.environ.get("SMTP_SECURITY", "starttls")
    # A CA bundle to check the SMTP server's certificate against (a private relay); empty: the
    # system's.
    SMTP_CA_FILE = os.environ.get("SMTP_CA_FILE", "")
    SMTP_TIMEOUT_SECONDS = os.environ.get("SMTP_TIMEOUT_SECONDS", "10")
    SES_ENDPOINT_URL = os.environ.get("SES_ENDPOINT_URL") or None
    SES_CONFIGURATION_SET = os.environ.get("SES_CONFIGURATION_SET", "")
    AWS_REGION = os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    SNS_ENDPOINT_URL = os.environ.get("SNS_ENDPOINT_URL") or None
    PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    ADMIN_API_TOKEN = os.environ.get("ADMIN_API_TOKEN", "")
    ADMIN_PASSWORD = os.environ.get("ADMIN_PASSWORD", "")
    RATELIMIT_ENABLED = _flag("RATELIMIT_ENABLED", True)
    RATELIMIT_HEADERS_ENABLED = True
    # A Redis hiccup must not turn into errors for players: limits pause, requests go on.
    RATELIMIT_SWALLOW_ERRORS = True
    # Submissions arriving this long after a player's time is up still count (requests in flight).
    SUBMIT_GRACE_SECONDS = float(os.environ.get("SUBMIT_GRACE_SECONDS", "3"))
    # A timed round's limit runs for each player from their own Start. A player who has not pressed
    # Start this long after their link SMS was sent (or failed for good) no longer holds the round
    # open. Empty: the round's time limit.
    START_WINDOW_SECONDS = _optional_seconds("START_WINDOW_SECONDS")
    # A timed round closes itself at the latest this long after it opened (players starting late get
    # what is left). Empty: limit + start window + the links' send time at SMS_RATE_PER_SECOND.
    ROUND_MAX_SECONDS = _optional_seconds("ROUND_MAX_SECONDS")
    # Region assumed for phone numbers typed without a +country code.
    PHONE_DEFAULT_REGION = os.environ.get("PHONE_DEFAULT_REGION", "US")
    EVENT_NAME = os.environ.get("EVENT_NAME", "Knockout")
    # Languages players may use (quiz/i18n.py: en, de, es), comma-separated; a phone's
    # Accept-Language picks among them, else DEFAULT_LANGUAGE. The console stays English.
    LANGUAGES = os.environ.get("LANGUAGES", "en,de,es")
    DEFAULT_LANGUAGE = os.environ.get("DEFAULT_LANGUAGE", "en")
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
    # After a round opens or closes, the waiting phones fetch their pages spread out so that the
    # room's fetches come at about this many a second (checked at start by quiz/waiting.py).
    STATUS_PAGES_PER_SECOND = os.environ.get("STATUS_PAGES_PER_SECOND", "250")
    # Submits first (quiz/web/priority.py): while this many submits or more are in flight in a web
    # process (a round's rush), its reads (GET, HEAD) wait for them, at most READ_YIELD_MAX_SECONDS
    # (0: never). Checked at start by config_checks.check_priority_settings.
    SUBMIT_PRIORITY_THRESHOLD = os.environ.get("SUBMIT_PRIORITY_THRESHOLD", "8")
    READ_YIELD_MAX_SECONDS = os.environ.get("READ_YIELD_MAX_SECONDS", "0.5")
    # Answered players' forms move to answered/ (the worker renders each again) this long after
    # the first submit that owes it: in a few large batches once a rush is answered, not during it.
    ANSWERED_FORMS_DELAY_SECONDS = os.environ.get("ANSWERED_FORMS_DELAY_SECONDS", "3")
    # The worker's niceness (0 to 19): where it shares cores with the web processes (one box), a
    # rush's requests (registrations, the herd after Start, submits) get the cores first and the
    # background work (stored forms, messages) takes what is left; on a box of its own it changes
    # nothing. 0: an equal share.
    WORKER_NICE = os.environ.get("WORKER_NICE", "5")
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
    # A login costs a test ~1 ms, not scrypt's ~0.1 s (the live stack's processes keep scrypt).
    PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"
    PUBLIC_BASE_URL = "http://quiz.test"
    RATELIMIT_ENABLED = False
    SUBMIT_GRACE_SECONDS = 1.0
    # Results at once, as the suite's close tests expect; tests of the delay and reopening set it.
    RESULTS_DELAY_SECONDS = 0.0
    # The leaderboard at a close, as the suite's projector tests expect; tests of the reveal set it.
    REVEAL_ANSWERS = False
    # Answered forms moved by the next run_jobs, as the suite expects; tests of the delay set it.
    ANSWERED_FORMS_DELAY_SECONDS = 0.0
