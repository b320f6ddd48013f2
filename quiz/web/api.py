"""The JSON API for scripts and integrations (the original event's endpoints); CSRF-exempt, no
cookies."""
import hmac
from functools import wraps

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select

from .. import clocks, i18n, rounds, shadow, undo, waiting
from ..audit import record
from ..clock import local_time, utcnow
from ..corrections import correct_participant
from ..errors import QuizError, ValidationError
from ..extensions import db, limiter
from ..leaderboard import leaderboard, round_counts
from ..links import link_url, report_url
from ..models import Challenge, Message, Participant, RoundStatus
from ..delivery import sms_progress
from ..registration import register_participant, validate_registration
from .handling import write
from .security import registration_key
from .status import answer

bp = Blueprint("api", __name__, url_prefix="/api")


def json_body() -> dict:
    """The request's JSON object, or a 400/415 that says what to send."""
    if not request.is_json:
        raise QuizError("Send a JSON body with 'Content-Type: application/json'.", code="not_json",
                        status=415)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise QuizError("The body is not a JSON object. Send e.g. {\"name\": \"Ada\", ...}.",
                        code="bad_json", status=400)
    return data


def check_admin_token() -> None:
    """Bearer ADMIN_API_TOKEN, compared in constant time; a 401/403 that says what to send."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise QuizError("Send 'Authorization: Bearer <ADMIN_API_TOKEN>'.", code="unauthorized",
                        status=401)
    if not hmac.compare_digest(token.strip().encode(),
                               current_app.config["ADMIN_API_TOKEN"].encode()):
        raise QuizError("That API token is not valid.", code="forbidden", status=403)


def is_staff() -> bool:
    """The caller holds the admin token; False when it sends none (a wrong one is refused, as on
    the admin calls, rather than quietly answered as the public)."""
    if "Authorization" not in request.headers:
        return False
    check_admin_token()
    return True


def admin_required(view):
    """Only for callers with the admin token."""
    @wraps(view)
    def wrapper(*args, **kwargs):
        check_admin_token()
        return view(*args, **kwargs)
    return wrapper


@bp.post("/register")
@limiter.limit("10 per minute", key_func=registration_key)
@limiter.limit("1200 per minute")
def register():
    """Register a participant → 201 with their report link, and their round links when
    LINKS_IN_REGISTRATION is on or the caller holds the admin token (else they come by SMS only)."""
    with_links = is_staff() or current_app.config["LINKS_IN_REGISTRATION"]  # before the write
    data = json_body()
    clean = validate_registration(data)
    # "language" (optional): one of LANGUAGES; else the Accept-Language header's (the language
    # switch's cookie first, as on the pages), else the default: the language this request speaks
    # (i18n.current_language), read without Babel's locale
    clean["language"] = (i18n.request_language() if data.get("language") is None
                         else i18n.offered(data["language"]))
    joined = write(register_participant, clean)
    body = {"user_id": joined.id, "report_url": report_url(joined.report_code)}
    if with_links:
        current = rounds.current_number([(number, status) for number, status, _ in joined.links])
        body["form_urls"] = {str(n): link_url(code) for n, _, code in joined.links}
        body["current_form_url"] = next((link_url(code) for number, _, code in joined.links
                                         if number == current), None)
    return jsonify(body), 201


@bp.post("/admin/start-challenge/<int:number>")
@admin_required
def start_challenge(number):
    """Open round `number`; its links go out in the background."""
    def operation():
        opened = rounds.start_round(number, utcnow())
        challenge = record("api", "start round", opened.challenge)
        # its plan as it opened, and the answer made before the commit (nothing read after it)
        return {"challenge": number, "status": challenge.status,
                "opened_at": _iso(challenge.opened_at),
                "closes_at": _iso(opened.plan.close_at if opened.plan else None),
                "latest_close_at": _iso(challenge.closes_at)}
    return jsonify(write(operation))


@bp.post("/admin/end-challenge/<int:number>")
@admin_required
def end_challenge(number):
    """Close round `number` and eliminate."""
    summary = write(lambda: record("api", "end round", rounds.close_round(number, utcnow())))
    return jsonify(challenge=number, status=RoundStatus.CLOSED, submitted=summary.submitted,
                   kept=summary.kept, eliminated_unanswered=summary.unanswered,
                   eliminated_ranked_out=summary.ranked_out, winner_id=summary.winner_id)


@bp.post("/admin/extend-challenge/<int:number>")
@admin_required
def extend_challenge(number):
    """Give open, timed round `number` more time: {"seconds": 60}."""
    seconds = json_body().get("seconds")

    def operation():
        challenge = undo.extend_round(number, seconds, utcnow())
        return record("api", "extend round", challenge,
                      f"round {number}: +{seconds} s, closes {local_time(challenge.closes_at)}")
    challenge = write(operation)
    return jsonify(challenge=number, status=challenge.status, **_closes(challenge))


def _closes(challenge) -> dict:
    """A timed round's planned close (when it closes itself, as things stand) and its latest."""
    planned = clocks.plan(challenge, utcnow()).close_at
    return {"closes_at": _iso(planned), "latest_close_at": _iso(challenge.closes_at)}


@bp.post("/admin/reopen-challenge/<int:number>")
@admin_required
def reopen_challenge(number):
    """Reopen round `number`, closed by mistake: its eliminations reversed, no results sent;
    optional {"seconds": N} when its time limit ran out."""
    seconds = json_body().get("seconds") if request.content_length else None

    def operation():
        done = undo.reopen_round(number, utcnow(), seconds)
        return record("api", "reopen round", done, undo.reopened_detail(done))
    done = write(operation)
    return jsonify(challenge=number, status=RoundStatus.OPEN, reinstated=done.back_in,
                   closes_at=_iso(done.closes_at))


@bp.post("/admin/participants/<int:participant_id>/reinstate")
@admin_required
def reinstate_participant(participant_id):
    """Bring a player knocked out or disqualified by mistake back into the game."""
    def operation():
        participant = _participant(participant_id)
        number, reason = undo.reinstate(participant)
        return record("api", "reinstate", participant,
                      f"{participant.name} (was out in round {number}: {reason})")
    participant = write(operation)
    return jsonify(user_id=participant.id, eliminated=False)


@bp.patch("/admin/participants/<int:participant_id>")
@admin_required
def correct_participant_view(participant_id):
    """Correct name, email, phone or company (checked as registration checks them); "resend":
    true texts their open round's link again."""
    data = json_body()
    resend = data.pop("resend", False)
    if not isinstance(resend, bool):
        raise ValidationError({"resend": "Send true or false."})

    def operation():
        participant = _participant(participant_id)
        done = correct_participant(participant, data, resend=resend)
        record("api", "correct participant", None,
               f"{participant.name} (#{participant.id}): {', '.join(done.changed) or 'nothing'}"
               f"{'; link resent' if done.resent else ''}")
        return participant, done
    participant, done = write(operation)
    return jsonify(user_id=participant.id, name=participant.name, email=participant.email,
                   phone=participant.phone, company=participant.company, changed=done.changed,
                   link_resent=done.resent)


def _participant(participant_id: int) -> Participant:
    participant = db.session.get(Participant, participant_id)
    if participant is None:
        raise QuizError(f"There is no participant {participant_id}.", code="no_such_participant",
                        status=404)
    return participant


@bp.get("/admin/sms-progress/<int:number>")
@admin_required
def sms_progress_view(number):
    """How far sending round `number`'s links has got."""
    return jsonify(sms_progress(rounds.get_challenge(number)))


@bp.get("/leaderboard/<int:number>")
def leaderboard_view(number):
    """Everyone who took part in round `number`, best first; until it closes, counts only (staff
    with the admin token: the provisional standings)."""
    challenge = rounds.get_challenge(number)
    if is_staff() or challenge.is_closed:  # a wrong token is refused, whatever the round
        return jsonify(challenge=number, status=challenge.status, entries=leaderboard(challenge))
    return jsonify(challenge=number, entries=[], **round_counts(challenge))


@bp.get("/shadow")
def shadow_view():
    """The shadow league (knocked-out players playing on, not for the prize), best first
    (?limit=)."""
    if not current_app.config["SHADOW_LEAGUE"]:
        raise QuizError("The shadow league is off (SHADOW_LEAGUE=0) at this event.",
                        code="shadow_off", status=404)
    limit = request.args.get("limit", None, type=int)
    if "limit" in request.args and (limit is None or not 1 <= limit <= 100_000):
        raise QuizError("limit must be a whole number between 1 and 100000.", code="bad_limit",
                        status=400)
    entries = shadow.standings(limit=limit)
    return jsonify(players=shadow.players(), entries=entries)


@bp.get("/admin/outbox")
@admin_required
def outbox():
    """What the outbox holds, newest first (?limit=, default 1000): the SMS, or the emails with
    ?channel=email."""
    limit = request.args.get("limit", 1000, type=int)
    if not 1 <= limit <= 100_000:
        raise QuizError("limit must be between 1 and 100000.", code="bad_limit", status=400)
    channel = request.args.get("channel", "sms")
    if channel not in CHANNELS:
        raise QuizError(f"channel must be sms or email (got {channel[:20]!r}); leave it out for "
                        "SMS.", code="bad_channel", status=400)
    messages = db.session.execute(select(Message, Challenge.number)
                                  .outerjoin(Challenge, Challenge.id == Message.challenge_id)
                                  .where(Message.channel == channel)
                                  .order_by(Message.id.desc()).limit(limit)).all()
    return jsonify(messages=[_outbox_entry(m, n) for m, n in messages])


CHANNELS = ("sms", "email")


def _outbox_entry(m: Message, number: int | None) -> dict:
    entry = {"to": m.to, "body": m.body, "challenge": number, "status": m.status,
             "kind": m.kind, "channel": m.channel, "created_at": _iso(m.created_at),
             "sent_at": _iso(m.sent_at)}
    if m.channel == "email":
        entry.update(subject=m.subject, html=m.html)
    return entry


def _iso(moment):
    return moment.isoformat() + "Z" if moment else None


@bp.get("/status")
def status():
    """What a waiting phone polls (quiz/waiting.py): the open round, the last closed, how often to
    ask; 304 when the version the phone holds is current."""
    code, headers, body = answer(waiting.current_status(), request.headers.get("If-None-Match"))
    return current_app.response_class(body, code, headers)
