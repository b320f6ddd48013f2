"""Start-time checks of the providers' settings (SMS, email, alerts): refused at start with what
to set, rather than thousands of failed messages later."""
import re

from .colours import ColourError, parse_colour
from .config import ConfigError


TWILIO_SETTINGS = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM")
TWILIO_SID = re.compile(r"AC[0-9a-fA-F]{32}")
# A number (E.164), a messaging service SID, a short code, an alphanumeric sender ID.
TWILIO_SENDER = re.compile(r"\+[1-9][0-9]{6,14}|MG[0-9a-fA-F]{32}|[0-9]{3,8}"
                           r"|(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")


# What carriers show as an SMS's sender (SNS's SenderID): 1-11 letters and digits, one a letter.
SENDER_NAME = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9]{1,11}")


def sender_name_problem(value: str, label: str) -> str | None:
    """What is wrong with `value` as an SMS sender name (None: nothing, or unset)."""
    if not value or SENDER_NAME.fullmatch(value):
        return None
    return (f"{label} {value!r} can't be an SMS sender name: 1 to 11 letters and digits, at "
            "least one a letter, no spaces or punctuation (e.g. DevConf26).")


def check_sms_settings(config) -> None:
    """SMS_BACKEND=twilio needs its account, token and sender, each in the shape Twilio gives them:
    refused at start (and by the backend) with what to set, rather than 5,000 failed messages.
    SMS_SENDER_ID is refused in a shape no carrier shows."""
    problem = sender_name_problem(config.get("SMS_SENDER_ID", ""), "SMS_SENDER_ID")
    if problem:
        raise ConfigError(problem)
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
EMAIL_BACKENDS = ("outbox", "smtp", "ses")
SMTP_SECURITIES = {"starttls": 587, "ssl": 465, "none": 25}  # and each one's usual port


def check_email_config(config) -> None:
    """EMAIL_* and SMTP_* as the email backend needs them (numbers parsed in place), or a
    ConfigError saying what to set."""
    backend = config["EMAIL_BACKEND"] = str(config["EMAIL_BACKEND"]).strip().lower()
    if backend not in EMAIL_BACKENDS:
        raise ConfigError(f"EMAIL_BACKEND={backend!r} is not one of: {', '.join(EMAIL_BACKENDS)} "
                          "(outbox keeps emails in the console, smtp sends through SMTP_HOST, "
                          "ses through Amazon SES).")
    config["EMAIL_RATE_PER_SECOND"] = _number(config, "EMAIL_RATE_PER_SECOND", float,
                                              "emails a second, e.g. 10 (0: no limit)")
    security = config["SMTP_SECURITY"] = str(config["SMTP_SECURITY"]).strip().lower()
    if security not in SMTP_SECURITIES:
        raise ConfigError(f"SMTP_SECURITY={security!r} is not one of: starttls (port 587), "
                          "ssl (port 465), none (port 25, only inside a trusted network).")
    if config["SMTP_PORT"] in (None, ""):
        config["SMTP_PORT"] = SMTP_SECURITIES[security]
    config["SMTP_PORT"] = _number(config, "SMTP_PORT", int, "a port number, e.g. 587")
    if not 0 < config["SMTP_PORT"] < 65536:
        raise ConfigError(f"SMTP_PORT={config['SMTP_PORT']} is not a port (1-65535).")
    config["SMTP_TIMEOUT_SECONDS"] = _number(config, "SMTP_TIMEOUT_SECONDS", float,
                                             "seconds, e.g. 10")
    if backend == "outbox":
        return
    sender = str(config["EMAIL_FROM"]).strip()
    address = sender.rpartition("<")[2].rstrip(">").strip()
    if "@" not in address or " " in address:
        raise ConfigError(f"EMAIL_BACKEND={backend} needs EMAIL_FROM, the sender, e.g. "
                          "quiz@example.com or 'Knockout <quiz@example.com>' "
                          f"(got {sender!r}).")
    if backend == "smtp" and not str(config["SMTP_HOST"]).strip():
        raise ConfigError("EMAIL_BACKEND=smtp needs SMTP_HOST, your mail server, e.g. "
                          "smtp.example.com (with SMTP_USERNAME and SMTP_PASSWORD if it asks).")
    if bool(config["SMTP_USERNAME"]) != bool(config["SMTP_PASSWORD"]):
        raise ConfigError("Set SMTP_USERNAME and SMTP_PASSWORD together (or neither, for a "
                          "server that takes mail without logging in).")
    if config["SMTP_USERNAME"] and security == "none" and backend == "smtp":
        raise ConfigError("SMTP_SECURITY=none would send SMTP_PASSWORD in clear text: use "
                          "starttls or ssl.")


def _number(config, name: str, kind: type, example: str):
    value = config[name]
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} is not a number: set {example}.")
    if number < 0:
        raise ConfigError(f"{name}={value!r} can't be negative: set {example}.")
    return number


def check_brand_settings(config) -> None:
    """BRAND_PRIMARY and BRAND_ACCENT are hex colours (or unset: Knockout's own); refused at start
    with what to write, and stored as #rrggbb."""
    for name in ("BRAND_PRIMARY", "BRAND_ACCENT"):
        if config.get(name):
            try:
                config[name] = parse_colour(config[name], name)
            except ColourError as error:
                raise ConfigError(str(error)) from None


READ_YIELD_MOST_SECONDS = 10  # a phone's or a load balancer's timeout comes soon after
ANSWERED_FORMS_MOST_SECONDS = 60  # a round everyone answered closes once their forms are moved


def check_priority_settings(config) -> None:
    """SUBMIT_PRIORITY_THRESHOLD a whole number of submits, 2 or more (1 would hold every read
    behind a lone submit); READ_YIELD_MAX_SECONDS seconds from 0 (off) to 10;
    ANSWERED_FORMS_DELAY_SECONDS from 0 (at once) to 60; WORKER_NICE a whole number from 0 to 19.
    Parsed in place."""
    _whole_number(config, "SUBMIT_PRIORITY_THRESHOLD", 2, None,
                  "a number of submits of 2 or more: set how many submits in flight in a web "
                  "process make a rush that reads wait for, e.g. 8 (READ_YIELD_MAX_SECONDS=0 turns "
                  "it off).")
    _seconds_up_to(config, "READ_YIELD_MAX_SECONDS", READ_YIELD_MOST_SECONDS,
                   "a phone or a load balancer would give up first",
                   "the longest a read waits for a rush of submits, e.g. 0.5 (0: reads never wait)")
    _seconds_up_to(config, "ANSWERED_FORMS_DELAY_SECONDS", ANSWERED_FORMS_MOST_SECONDS,
                   "a round that everyone has answered closes only once their forms are moved",
                   "how long after a submit the answered forms are moved, e.g. 3 (0: at once)")
    _whole_number(config, "WORKER_NICE", 0, 19,
                  "a niceness from 0 to 19: set how far the worker yields shared cores to the web "
                  "processes, e.g. 5 (0: an equal share).")


def _whole_number(config, name: str, least: int, most: int | None, wanted: str) -> None:
    """`name` parsed in place: a whole number from `least` to `most` (None: no bound); refused
    saying it is not `wanted`."""
    value = config[name]
    try:
        number = int(str(value).strip())
    except ValueError:
        number = None
    if number is None or number < least or (most is not None and number > most):
        raise ConfigError(f"{name}={value!r} is not {wanted}")
    config[name] = number


def _seconds_up_to(config, name: str, most: float, why: str, example: str) -> None:
    """`name` parsed in place: seconds from 0 to `most`; refused with `why` and `example`."""
    seconds = config[name] = _number(config, name, float, example)
    if not seconds <= most:  # NaN included
        raise ConfigError(f"{name}={seconds:g} is more than {most} s: {why}; set {example}.")
