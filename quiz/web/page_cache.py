"""The Start page ("Ready?") from a per-process copy: the page every phone of the herd opens after
"Start round" (its link from the SMS, or its waiting page's fragment), the same for every player of
a round but for a few values.

It holds a session CSRF token (the help form, the language switch), so it stays in Flask; what it
saves is the render. The first page of a kind is rendered as always, then kept with the player's
own values marked: their link's code, its token (the Start form's, quiz/web/start_path.py), report
code, CSRF token and (the whole page) their name. The next player's page is that copy with their
values put in: the same bytes as a render (tests/test_page_path.py compares them). A copy is kept
per template, language, look, round (its state, title, clock, question count) and shadow-league
note; a page with anything more (a flash message, a staff login, a help request, an error) is
rendered as always. `copied_page` keeps the "already in" page of a repeated submit the same way
(quiz/web/repeat_page.py).
"""
import random

from flask import current_app, render_template, request, session
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import escape

from .. import i18n, waiting
from ..branding import current_look
from ..models import FormLink
from ..stored_forms import form_token

EXTENSION = "knockout.ready_pages"
LIMIT = 64  # copies a process keeps (a few a round and language); past that it starts afresh
PAGE = "play/round.html"
CODE, REPORT, TOKEN, NAME = "\x00code\x00", "\x00report\x00", "\x00token\x00", "\x00name\x00"
START = "\x00start\x00"  # the Start form's link token (quiz/web/start_path.py)


def waiting_context(link: FormLink, state: str) -> dict:
    """What a waiting page polls with: the shared status it was rendered at (quiz/waiting.py), and
    for "check in first" (this player's own wait) its delay, jittered."""
    status = waiting.current_status()
    return {"status": status, "waits": waiting.waits(state, link.challenge.is_closed),
            "poll_delay": round(status.poll_seconds * random.uniform(1, 1.5), 1)}


def closing_in(context: dict) -> int | None:
    """The seconds the Start page shows until the round closes, when it shows them."""
    challenge, now = context["challenge"], context["now"]
    if not (challenge.time_limit_seconds and challenge.closes_at):
        return None
    left = (challenge.closes_at - now).total_seconds()
    return max(int(left), 0) if left < challenge.time_limit_seconds + challenge.extra_seconds \
        else None


def plain_session() -> bool:
    """Nothing of this session's own on a page but its CSRF token: no message, no staff login."""
    return not ("_flashes" in session or "_user_id" in session
                or current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
                in request.cookies)


def ready_page(template: str, link: FormLink, context: dict) -> str:
    """The Start page (`template`: whole or fragment) for `link`, from the copy if there is one."""
    if not plain_session():
        return render_template(template, **context)  # a message, or staff: a page of its own
    challenge = link.challenge
    key = (template, challenge.id, challenge.status, challenge.number, challenge.title,
           challenge.time_limit_seconds, challenge.extra_seconds, closing_in(context),
           context["facts"], context["shadow"], context["waits"])
    participant = link.participant
    return copied_page(key, (link.code, participant.report_code,
                             participant.name if template == PAGE else None),
                       lambda: (render_template(template, **context), True))


def copied_page(key: tuple, player: tuple[str, str, str | None], render) -> str:
    """The page `key` names (with the language and look) for a player (their link's code, report
    code, and name when the page shows it, once): the copy with their values put in, else
    `render()`'s (page, whether it may be kept), kept marked."""
    key = (i18n.current_language(), repr(current_look()), *key)
    copies = current_app.extensions.setdefault(EXTENSION, {})
    copy = copies.get(key)
    page, keep = render() if copy is None else (copy, False)
    # What a render asks first (Flask-Login marks a session it doesn't know as not fresh), then
    # the session's token: the same session, and cookie, as a render leaves.
    current_user.is_authenticated  # noqa: B018
    code, report, name = player
    # the link's token before its code (the page holds each once per form); absent from a page
    # without a Start form, where putting it in changes nothing
    values = [(TOKEN, generate_csrf()), (START, form_token(code)), (CODE, code), (REPORT, report)]
    if name is not None:
        values.append((NAME, str(escape(name))))
    plain = all(value and "\x00" not in value for _, value in values)  # not an empty name, say
    if copy is None:
        if keep and plain and (marked := _marked(page, values)):
            if len(copies) >= LIMIT:
                copies.clear()
            copies[key] = marked
        return page
    if not plain:
        return render()[0]
    for mark, value in values:  # the name last: nothing put in before it holds a mark
        page = page.replace(mark, value)
    return page


def _marked(page: str, values: list[tuple[str, str]]) -> str | None:
    """`page` with each value replaced by its mark; None when the name isn't found exactly once (a
    name that is also a word of the page: not kept, the next page is rendered and kept if it can
    be)."""
    for mark, value in values:
        if mark == NAME and page.count(value) != 1:
            return None
        page = page.replace(value, mark)
    return page
