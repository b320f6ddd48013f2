"""What a synthetic player reads off Knockout's pages, as a phone would: the form's token, each
question's choices, and a phone number of its own (the rehearsal and the live tests use these).

Every submission is built from the page's own form: a choice's value is opaque and differs per
player (quiz/deal.py), and the questions come in the player's order, so nothing here assumes either.
"""
import html
import re

from .errors import QuizError

# Fictional-looking numbers (the 555 exchange) across area codes: 10,000 players per area code.
AREA_CODES = (201, 202, 203, 205, 206, 207, 208, 209, 210, 212, 213, 214, 215, 216, 217, 218, 219,
              224, 225, 228)
CHOICE = re.compile(r'<input type="(?:radio|checkbox)" name="(q\d+)" value="([^"]+)"[^>]*>'
                    r'\s*<span>([^<]*)</span>')
QUESTION = re.compile(r'<legend><span class="qnum">\d+</span>\s*([^<]*?)\s*(?:<small>|</legend>)')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ANSWER_TOKEN = re.compile(r'name="(form_token|csrf_token)" value="([^"]+)"')
FORM = re.compile(r'<form\b([^>]*)>(.*?)</form>', re.S)
ACTION = re.compile(r'\baction="([^"]*)"')
HX_POST = re.compile(r'\bhx-post="[^"]*"')
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


def csrf(page: str) -> str:
    """The CSRF token a page's form carries, as a browser sends it back."""
    match = CSRF.search(page)
    if not match:
        raise RehearsalError("the page has no form token")
    return match.group(1)


def answer_token(page: str) -> dict[str, str]:
    """The questions page's token: the stored form's own (served or from S3), or the live page's
    CSRF token."""
    match = ANSWER_TOKEN.search(page)
    if not match:
        raise RehearsalError("the page has no form token")
    return {match.group(1): match.group(2)}


def form_fields(page: str, action_end: str) -> dict[str, str]:
    """The hidden fields of the page's form that posts to an address ending in `action_end` (the
    Start form's link token, say), as a browser sends them back."""
    for attributes, body in FORM.findall(page):
        action = ACTION.search(attributes)
        if action and html.unescape(action.group(1)).endswith(action_end):
            return {name: html.unescape(value) for name, value in HIDDEN.findall(body)}
    raise RehearsalError(f"the page has no form that posts to …{action_end}")


def posts_with_htmx(page: str, action_end: str) -> bool:
    """Whether the page's form that posts to an address ending in `action_end` posts through htmx
    (its hx-post): a browser then sends HX-Request and takes the answer in place (the Start form:
    the questions page itself, no 303 and GET after it)."""
    for attributes, _ in FORM.findall(page):
        action = ACTION.search(attributes)
        if action and html.unescape(action.group(1)).endswith(action_end):
            return HX_POST.search(attributes) is not None
    raise RehearsalError(f"the page has no form that posts to …{action_end}")


def question_choices(page: str) -> dict[str, dict[str, str]]:
    """A round page's questions: field name → {choice label: value}, in page order."""
    questions: dict[str, dict[str, str]] = {}
    for name, value, label in CHOICE.findall(page):
        questions.setdefault(name, {})[html.unescape(label)] = value
    return questions


def question_texts(page: str) -> dict[str, str]:
    """A round page's questions: field name → question text, in page order."""
    texts = {}
    for part in page.split("<fieldset")[1:]:
        label, choice = QUESTION.search(part), CHOICE.search(part)
        if label and choice:
            texts[choice.group(1)] = html.unescape(label.group(1))
    return texts


def synthetic_phone(n: int) -> str:
    """The n-th rehearsal player's phone, E.164 in the 555 exchange."""
    return f"+1{AREA_CODES[n // 10_000 % len(AREA_CODES)]}555{n % 10_000:04d}"


class RehearsalError(QuizError):
    """The rehearsal cannot go on; the message says why and what to do."""

    def __init__(self, message: str):
        super().__init__(message, code="rehearsal")
