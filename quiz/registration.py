"""Joining the game: validating what people type, and creating the participant."""
import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import exists, select

from .errors import QuizError, ValidationError
from .extensions import db
from .join_store import Registered, store
from .models import Challenge

NAME_MAX = 80
COMPANY_MAX = 100
EMAIL_MAX = 254
PHONE_MAX = 32


YES = (True, "true", "on", "yes", "1", 1)  # a ticked box (form) or true (JSON)
TEXT_FIELDS = ("name", "email", "phone", "company")

# Bidi overrides would let a name reverse or garble the text beside it on the projector.
BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Bidi marks (left-to-right, right-to-left, Arabic letter mark) come from keyboards, not mischief:
# dropped, so they can't reorder the text beside a name either.
BIDI_MARKS = str.maketrans("", "", "\u200e\u200f\u061c")
# Letters that show as nothing though they aren't format characters (Unicode's
# Default_Ignorable_Code_Point beside category Cf): Hangul fillers, the combining grapheme joiner,
# variation selectors; and the blank Braille pattern.
BLANK = set("\u115f\u1160\u3164\uffa0\u034f\u17b4\u17b5\u180b\u180c\u180d\u180f\u2800"
            + "".join(map(chr, range(0xFE00, 0xFE10))) + "".join(map(chr, range(0xE0100, 0xE01F0))))


def _unprintable(ch: str) -> bool:
    # U+FFFD is what undecodable (non-UTF-8) bytes turn into: garbled input, not a name.
    return (unicodedata.category(ch) in ("Cc", "Cs", "Co", "Cn") or ch in BIDI_CONTROLS
            or ch == "\ufffd")


def _invisible(ch: str) -> bool:
    """Shows as nothing: a format character (zero-width space, word joiner, BOM, …) or a blank."""
    return ch.isspace() or unicodedata.category(ch) == "Cf" or ch in BLANK


def _clean_text(value, field: str, maximum: int, required: bool, errors: dict) -> str:
    """Trimmed single-line text without control characters, and not made of invisible ones."""
    text = " ".join(str(value or "").translate(BIDI_MARKS).split())
    if any(_unprintable(ch) for ch in text):
        errors[field] = "Please use letters, digits and punctuation only."
    elif required and all(_invisible(ch) for ch in text):
        errors[field] = "Please fill this in."
    elif len(text) > maximum:
        errors[field] = f"Please keep this under {maximum} characters (it has {len(text)})."
    return text


class PhoneError(QuizError):
    """A phone number that cannot take our SMS; the message says what to fix."""

    status = 422

    def __init__(self, message: str):
        super().__init__(message, code="bad_phone")


def clean_phone(raw: str, region: str) -> str:
    """The phone number in E.164, or PhoneError with what to fix."""
    if not raw:
        raise PhoneError("Please enter your mobile number: your round links come by SMS.")
    if len(raw) > PHONE_MAX:
        raise PhoneError("That is too long for a phone number.")
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise PhoneError("That doesn't look like a phone number. "
                         "Include the country code, e.g. +1 415 555 0100.")
    if not phonenumbers.is_valid_number(number):
        raise PhoneError("That phone number isn't valid. "
                         "Include the country code, e.g. +44 7700 900123.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def validate_registration(data) -> dict:
    """Check a join form (HTML or JSON); returns clean values or raises ValidationError."""
    # JSON may send an object, a list, a number or true where text belongs: never stored as its
    # Python spelling.
    wrong = {field: f"Please send {field} as text (a JSON string)." for field in TEXT_FIELDS
             if data.get(field) is not None and not isinstance(data.get(field), str)}
    if wrong:
        raise ValidationError(wrong, "Please send " + ", ".join(wrong) + " as text.")
    errors: dict[str, str] = {}
    clean = {
        "name": _clean_text(data.get("name"), "name", NAME_MAX, True, errors),
        "company": _clean_text(data.get("company"), "company", COMPANY_MAX, False, errors),
    }
    email = str(data.get("email") or "").strip()
    try:
        if len(email) > EMAIL_MAX:
            raise EmailNotValidError("That email address is too long.")
        clean["email"] = validate_email(email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        errors["email"] = "Please enter your email address." if not email else str(exc)
    try:
        clean["phone"] = clean_phone(str(data.get("phone") or "").strip(),
                                     current_app.config["PHONE_DEFAULT_REGION"])
    except PhoneError as exc:
        errors["phone"] = exc.message
    clean["consent"] = data.get("consent") in YES
    clean["sponsor_consent"] = data.get("sponsor_consent") in YES
    if not clean["consent"]:
        # The same on the page and through the API: no links by SMS, no name on the leaderboard,
        # without it.
        errors["consent"] = "Needed: your round links come by SMS."
    if errors:
        raise ValidationError(errors)
    return clean


def registration_open() -> bool:
    """Joining is possible until the first round has closed."""
    return not db.session.scalar(select(exists().where(Challenge.is_closed)))


def register_participant(clean: dict) -> Registered:
    """Create a participant and a link for every round; the caller commits. Under gevent it goes
    through the process's group commit (quiz/join_store.py): committed once this returns."""
    return store(clean)
