"""The wording of every email: a subject, a plain text and an HTML body per kind, with defaults;
organizers edit them in the console (EmailTemplate rows).

SMS wording is `{placeholder}` text filled in by SQL (quiz/notify.py); emails carry HTML, whose CSS
braces would clash with that, so they are Jinja templates (`{{ name }}`) rendered in Jinja's
sandbox: an organizer's template can read the values it is given and nothing else (no attributes
of Python objects, no imports), HTML bodies escape every value, and a template that names a
value its kind does not have is refused when it is saved.
"""
import functools
from dataclasses import dataclass

from jinja2 import StrictUndefined, TemplateError as JinjaError, meta
from jinja2.sandbox import SandboxedEnvironment

from .errors import QuizError
from .extensions import db
from .mail import QR_CID
from .models import EmailTemplate

TEXT_ENV = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
HTML_ENV = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
PARTS = ("subject", "text", "html")
SUBJECT_MAX = 200
BODY_MAX = 20_000

_FOOTER_TEXT = "\n\n--\nNo more emails from {{ event }}: {{ unsubscribe }}\n"
_FOOTER_HTML = ('<p style="color:#666;font-size:12px">No more emails from {{ event }}? '
                '<a href="{{ unsubscribe }}">Unsubscribe</a>.</p>')


def _html(body: str) -> str:
    return (f'<!doctype html><html><body style="font-family:sans-serif;line-height:1.4">{body}'
            f"{_FOOTER_HTML}</body></html>")


@dataclass(frozen=True)
class Wording:
    subject: str
    text: str
    html: str


DEFAULTS = {
    "confirmation": Wording(
        "{{ event }}: you're in, {{ name }}",
        "Hi {{ name }},\n\nyou're registered for {{ event }}. Your round links come by SMS when "
        "each round opens.\nYour results and your check-in QR code, any time: {{ report }}"
        + _FOOTER_TEXT,
        _html("<p>Hi {{ name }},</p><p>you're registered for <b>{{ event }}</b>. Your round links "
              "come by SMS when each round opens.</p><p>Your results, any time: "
              '<a href="{{ report }}">{{ report }}</a></p><p>Show this QR code at the check-in '
              'desk:<br><img src="{{ qr }}" alt="Your check-in QR code" width="200" '
              'height="200"></p>')),
    "link_fallback": Wording(
        "{{ event }}: your link for round {{ number }}",
        "Hi {{ name }},\n\nwe couldn't text you the link for round {{ number }} "
        "\"{{ title }}\". Here it is: {{ link }}\nYour results: {{ report }}" + _FOOTER_TEXT,
        _html("<p>Hi {{ name }},</p><p>we couldn't text you the link for round {{ number }} "
              "&ldquo;{{ title }}&rdquo;. Here it is:</p>"
              '<p><a href="{{ link }}">{{ link }}</a></p>'
              '<p>Your results: <a href="{{ report }}">{{ report }}</a></p>')),
    # Instead of link_fallback when LINKS_IN_REGISTRATION is off: an email address is no proof of a
    # phone, so the link is handed out at the desk only.
    "link_fallback_desk": Wording(
        "{{ event }}: round {{ number }} is open",
        "Hi {{ name }},\n\nwe couldn't text you the link for round {{ number }} "
        "\"{{ title }}\". Please ask at the help desk: they will give you your link."
        + _FOOTER_TEXT,
        _html("<p>Hi {{ name }},</p><p>we couldn't text you the link for round {{ number }} "
              "&ldquo;{{ title }}&rdquo;. Please ask at the <b>help desk</b>: they will give you "
              "your link.</p>")),
    "results": Wording(
        "{{ event }}: the final results",
        "Hi {{ name }},\n\nthe final of {{ event }} is over. Thanks for playing! "
        "Your results: {{ report }}" + _FOOTER_TEXT,
        _html("<p>Hi {{ name }},</p><p>the final of <b>{{ event }}</b> is over. Thanks for "
              'playing!</p><p>Your results: <a href="{{ report }}">{{ report }}</a></p>')),
}
COMMON = {"event", "name", "report", "unsubscribe"}
PLACEHOLDERS = {
    "confirmation": COMMON | {"qr"},
    "link_fallback": COMMON | {"number", "title", "link"},
    "link_fallback_desk": COMMON | {"number", "title"},
    "results": COMMON,
}
TITLES = {"confirmation": "Registration confirmation",
          "link_fallback": "Round link, when its SMS failed",
          "link_fallback_desk": "Round link SMS failed (LINKS_IN_REGISTRATION off: ask the desk)",
          "results": "Final results"}
SAMPLE = {"event": "Knockout", "name": "Ada Lovelace", "report": "https://quiz.example/r/sample",
          "unsubscribe": "https://quiz.example/u/sample", "qr": f"cid:{QR_CID}", "number": 1,
          "title": "Sample round", "link": "https://quiz.example/f/sample"}


class EmailTemplateError(QuizError):
    """Email wording that cannot be sent; the message says what to fix and fields says where."""

    status = 422

    def __init__(self, part: str, message: str):
        super().__init__(message, code="bad_template", fields={part: message})


def wording(kind: str) -> Wording:
    stored = db.session.get(EmailTemplate, kind)
    return Wording(stored.subject, stored.text, stored.html) if stored else DEFAULTS[kind]


@functools.lru_cache(maxsize=64)
def _compiled(html: bool, source: str):
    """A template compiled once (compiling costs far more than filling in: a registration rush
    renders the same confirmation thousands of times)."""
    return (HTML_ENV if html else TEXT_ENV).from_string(source)


def render(kind: str, values: dict, words: Wording | None = None) -> Wording:
    """The email of `kind` filled in with `values` (HTML escaped in the HTML body)."""
    words = words or wording(kind)
    return Wording(" ".join(_compiled(False, words.subject).render(values).split()),
                   _compiled(False, words.text).render(values),
                   _compiled(True, words.html).render(values))


def check(kind: str, subject: str, text: str, html: str) -> Wording:
    """What the organizer typed, or EmailTemplateError saying which part to fix and how."""
    words = Wording(" ".join(subject.split()), text.strip(), html.strip())
    allowed = PLACEHOLDERS[kind]
    for part in PARTS:
        source = getattr(words, part)
        if not source:
            raise EmailTemplateError(part, f"The {part} can't be empty.")
        if len(source) > (SUBJECT_MAX if part == "subject" else BODY_MAX):
            raise EmailTemplateError(part, f"The {part} is too long ({len(source)} characters).")
        env = HTML_ENV if part == "html" else TEXT_ENV
        try:
            used = meta.find_undeclared_variables(env.parse(source))
        except JinjaError as error:
            line = getattr(error, "lineno", None)
            raise EmailTemplateError(part, f"The {part} isn't a valid template"
                                     + (f" (line {line})" if line else "") + f": {error}. "
                                     "Values go in double braces, like {{ name }}.")
        unknown = sorted(used - allowed)
        if unknown:
            raise EmailTemplateError(part, f"Unknown value {{{{ {unknown[0]} }}}} in the {part}; "
                                     "this email can use: "
                                     + ", ".join("{{ " + p + " }}" for p in sorted(allowed)) + ".")
        if part != "subject" and "unsubscribe" not in used:
            raise EmailTemplateError(part, f"The {part} must contain {{{{ unsubscribe }}}}: every "
                                     "email carries a link to stop them.")
        if kind == "link_fallback" and part != "subject" and "link" not in used:
            raise EmailTemplateError(part, f"The {part} must contain {{{{ link }}}}: it's what "
                                     "this email is for.")
    try:
        render(kind, SAMPLE, words)
    except JinjaError as error:  # e.g. the sandbox refused something the template tried
        raise EmailTemplateError("text", f"This wording can't be filled in: {error}.")
    return words


def save(kind: str, subject: str, text: str, html: str) -> None:
    """Store the organizer's wording (checked first); the caller commits."""
    words = check(kind, subject, text, html)
    stored = db.session.get(EmailTemplate, kind) or EmailTemplate(kind=kind)
    stored.subject, stored.text, stored.html = words.subject, words.text, words.html
    db.session.add(stored)


def reset(kind: str) -> None:
    """Back to the default wording; the caller commits."""
    stored = db.session.get(EmailTemplate, kind)
    if stored is not None:
        db.session.delete(stored)
