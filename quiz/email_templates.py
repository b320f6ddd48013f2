"""The wording of every email: a subject, a plain text and an HTML body per kind and language, with
defaults in every language Knockout speaks (English here, the others in quiz/translations);
organizers edit a language's version in the console (EmailTemplate rows, by kind and language).

SMS wording is `{placeholder}` text filled in by SQL (quiz/notify.py); emails carry HTML, whose CSS
braces would clash with that, so they are Jinja templates (`{{ name }}`) rendered in Jinja's
sandbox: an organizer's template can read the values it is given and nothing else (no attributes
of Python objects, no imports), HTML bodies escape every value, and a template that names a
value its kind does not have is refused when it is saved.
"""
import functools
from dataclasses import dataclass
from typing import Callable

from flask import current_app
from flask_babel import force_locale, lazy_gettext as _l
from jinja2 import StrictUndefined, TemplateError as JinjaError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape
from sqlalchemy import select

from .errors import QuizError
from .extensions import db
from .i18n import default
from .mail import QR_CID
from .models import EmailTemplate
from .sms_templates import check_language

TEXT_ENV = SandboxedEnvironment(autoescape=False, undefined=StrictUndefined)
HTML_ENV = SandboxedEnvironment(autoescape=True, undefined=StrictUndefined)
PARTS = ("subject", "text", "html")
SUBJECT_MAX = 200
BODY_MAX = 20_000

_FOOTER_TEXT = _l("No more emails from {{ event }}: {{ unsubscribe }}")
_FOOTER_HTML = _l('No more emails from {{ event }}? <a href="{{ unsubscribe }}">Unsubscribe</a>.')


@dataclass(frozen=True)
class Wording:
    subject: str
    text: str
    html: str


# Each kind's default subject, plain text and HTML body (without the unsubscribe footer, which
# default_wording adds), in English; quiz/translations has them in every other language.
DEFAULTS = {
    "confirmation": (
        _l("{{ event }}: you're in, {{ name }}"),
        _l("Hi {{ name }},\n\nyou're registered for {{ event }}. Your round links come by SMS "
           "when each round opens.\nYour results and your check-in QR code, any time: "
           "{{ report }}"),
        _l("<p>Hi {{ name }},</p><p>you're registered for <b>{{ event }}</b>. Your round links "
           "come by SMS when each round opens.</p><p>Your results, any time: "
           '<a href="{{ report }}">{{ report }}</a></p><p>Show this QR code at the check-in '
           'desk:<br><img src="{{ qr }}" alt="Your check-in QR code" width="200" '
           'height="200"></p>')),
    "link_fallback": (
        _l("{{ event }}: your link for round {{ number }}"),
        _l("Hi {{ name }},\n\nwe couldn't text you the link for round {{ number }} "
           "\"{{ title }}\". Here it is: {{ link }}\nYour results: {{ report }}"),
        _l("<p>Hi {{ name }},</p><p>we couldn't text you the link for round {{ number }} "
           "&ldquo;{{ title }}&rdquo;. Here it is:</p>"
           '<p><a href="{{ link }}">{{ link }}</a></p>'
           '<p>Your results: <a href="{{ report }}">{{ report }}</a></p>')),
    # Instead of link_fallback when LINKS_IN_REGISTRATION is off: an email address is no proof of a
    # phone, so the link is handed out at the desk only.
    "link_fallback_desk": (
        _l("{{ event }}: round {{ number }} is open"),
        _l("Hi {{ name }},\n\nwe couldn't text you the link for round {{ number }} "
           "\"{{ title }}\". Please ask at the help desk: they will give you your link."),
        _l("<p>Hi {{ name }},</p><p>we couldn't text you the link for round {{ number }} "
           "&ldquo;{{ title }}&rdquo;. Please ask at the <b>help desk</b>: they will give you "
           "your link.</p>")),
    "results": (
        _l("{{ event }}: the final results"),
        _l("Hi {{ name }},\n\nthe final of {{ event }} is over. Thanks for playing! "
           "Your results: {{ report }}"),
        _l("<p>Hi {{ name }},</p><p>the final of <b>{{ event }}</b> is over. Thanks for "
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


@functools.lru_cache(maxsize=64)
def default_wording(kind: str, language: str) -> Wording:
    """Knockout's own wording of `kind` in `language`, with its unsubscribe footer (worded once:
    the catalogs don't change while a process runs, and a registration batch asks for it)."""
    with force_locale(language):
        subject, text, html = (str(part) for part in DEFAULTS[kind])
        footer_text, footer_html = str(_FOOTER_TEXT), str(_FOOTER_HTML)
    return Wording(subject, f"{text}\n\n--\n{footer_text}\n",
                   f'<!doctype html><html lang="{language}"><body style="font-family:sans-serif;'
                   f'line-height:1.4">{html}<p style="color:#666;font-size:12px">{footer_html}'
                   "</p></body></html>")


def sample(language: str) -> dict:
    """The sample values a preview and a test email are filled in with, in `language`."""
    with force_locale(language):
        return dict(SAMPLE, title=str(_l("Sample round")),
                    event=current_app.config["EVENT_NAME"])


class EmailTemplateError(QuizError):
    """Email wording that cannot be sent; the message says what to fix and fields says where."""

    status = 422

    def __init__(self, part: str, message: str):
        super().__init__(message, code="bad_template", fields={part: message})


def wording(kind: str, language: str | None = None) -> Wording:
    """`kind`'s wording in `language` (the default language if None): the organizer's version if
    they edited that language's, else that language's default."""
    language = language or default()
    stored = db.session.get(EmailTemplate, (kind, language))
    return (Wording(stored.subject, stored.text, stored.html) if stored
            else default_wording(kind, language))


def edited(language: str) -> set[str]:
    """The kinds whose `language` version the organizer edited."""
    return set(db.session.scalars(select(EmailTemplate.kind)
                                  .where(EmailTemplate.language == language)))


@functools.lru_cache(maxsize=64)
def _compiled(html: bool, source: str) -> Callable[[dict], str]:
    """A template made ready once (compiling costs far more than filling in: a registration rush
    renders the same confirmation thousands of times): its `render`. One made of text and
    `{{ placeholder }}`s only (Knockout's own wording, and an edited one that adds no logic) is
    filled in by joining its pieces as Jinja's render joins them (each value escaped in HTML),
    without a render context each time; any other, or values without one of its placeholders,
    through Jinja."""
    env = HTML_ENV if html else TEXT_ENV
    template = env.from_string(source)
    pieces = _pieces(env.parse(source))
    if pieces is None:
        return template.render
    shown = escape if html else str

    def fill(values: dict) -> str:
        try:
            return "".join(piece if text else shown(values[piece]) for text, piece in pieces)
        except KeyError:  # Jinja words the error (or finds a global of that name)
            return template.render(values)
    return fill


def _pieces(parsed: nodes.Template) -> tuple[tuple[bool, str], ...] | None:
    """A template's (is text, text or placeholder name) in order, when it holds nothing else."""
    pieces = []
    for output in parsed.body:
        if not isinstance(output, nodes.Output):
            return None  # a block tag: {% if %}, {% for %}, {% set %}, ...
        for node in output.nodes:
            if isinstance(node, nodes.TemplateData):
                pieces.append((True, node.data))
            elif isinstance(node, nodes.Name) and node.ctx == "load":
                pieces.append((False, node.name))
            else:
                return None  # a filter, an attribute, an expression
    return tuple(pieces)


def render(kind: str, values: dict, words: Wording | None = None,
           language: str | None = None) -> Wording:
    """The email of `kind` in `language` filled in with `values` (HTML escaped in the HTML
    body)."""
    words = words or wording(kind, language)
    return Wording(" ".join(_compiled(False, words.subject)(values).split()),
                   _compiled(False, words.text)(values),
                   _compiled(True, words.html)(values))


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


def save(kind: str, subject: str, text: str, html: str, language: str | None = None) -> None:
    """Store the organizer's wording of `kind` in `language` (checked first); the caller
    commits."""
    language = check_language(language)
    words = check(kind, subject, text, html)
    stored = (db.session.get(EmailTemplate, (kind, language))
              or EmailTemplate(kind=kind, language=language))
    stored.subject, stored.text, stored.html = words.subject, words.text, words.html
    db.session.add(stored)


def reset(kind: str, language: str | None = None) -> None:
    """`language`'s version back to the default wording; the caller commits."""
    stored = db.session.get(EmailTemplate, (kind, check_language(language)))
    if stored is not None:
        db.session.delete(stored)
