"""The console's photo review: a grid per round, Accept / Reject, and the photos themselves (staff
only)."""
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from .. import photos
from ..audit import record
from ..clock import utcnow
from ..errors import QuizError
from ..extensions import db
from ..models import Challenge, PhotoAnswer, PhotoStatus, Question, Role
from ..storage import StorageError
from .handling import wants_fragment, write
from .roles import requires

bp = Blueprint("photos", __name__, url_prefix="/admin/photos")
FILTERS = (*PhotoStatus, "all")


@bp.get("/")
@requires(Role.VIEWER)
def index():
    """Rounds that have photo questions, with their photos per review status."""
    challenges = db.session.scalars(
        select(Challenge)
        .where(Challenge.id.in_(select(Question.challenge_id).where(Question.kind == "photo")))
        .order_by(Challenge.number)).all()
    return render_template("admin/photos.html", challenges=challenges,
                           counts=photos.counts_by_status(), challenge=None,
                           statuses=tuple(PhotoStatus))


@bp.get("/<int:number>")
@requires(Role.VIEWER)
def review_page(number):
    """One round's photos, pending first by default; ?status= pending, accepted, rejected or all."""
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == number)) or abort(404)
    status = request.args.get("status", PhotoStatus.PENDING)
    if status not in FILTERS:
        abort(400, f"Show photos by status: one of {', '.join(FILTERS)}.")
    return render_template("admin/photos.html", challenge=challenge, status=status, filters=FILTERS,
                           photos=photos.photos_of_round(challenge, status),
                           counts=photos.counts_by_status(challenge.id),
                           statuses=tuple(PhotoStatus))


@bp.post("/review/<int:photo_id>")
@requires(Role.HOST)
def review(photo_id):
    """Accept or reject one photo (htmx swaps its card; without JS, back to the round's grid with a
    message)."""
    photo = (db.session.get(PhotoAnswer, photo_id)
             or abort(404, "There is no such photo. Reload the page."))
    shown = request.form.get("status", PhotoStatus.PENDING)
    back = url_for("photos.review_page", number=photo.question.challenge.number,
                   status=shown if shown in FILTERS else PhotoStatus.PENDING)
    decision, who = (request.form.get("decision", ""),
                     f"{photo.participant.name}, question {photo.question.position}")
    try:
        write(lambda: record(current_user.username, f"{decision} photo", photos.review_photo(
            photo_id, decision, current_user.username, utcnow()), who, about=photo.participant))
    except QuizError as error:
        if wants_fragment():
            return render_template("admin/_photo_card.html", photo=photo, error=error), error.status
        flash(str(error.message), "error")  # a lazy message cannot go into the session
        return redirect(back, 303)
    if wants_fragment():  # the card, and the filters' counts out of band
        challenge = photo.question.challenge
        return (render_template("admin/_photo_card.html", photo=photo, error=None)
                + render_template("admin/_photo_filters.html", oob=True, challenge=challenge,
                                  filters=FILTERS,
                                  status=shown if shown in FILTERS else PhotoStatus.PENDING,
                                  counts=photos.counts_by_status(challenge.id)))
    flash(f"Photo from {photo.participant.name} {photo.status}.", "ok")
    return redirect(back, 303)


@bp.get("/image/<int:photo_id>.jpg")
@requires(Role.VIEWER)
def image(photo_id):
    """The stored photo, streamed from storage through Knockout (never a public or pre-signed
    URL)."""
    photo = db.session.get(PhotoAnswer, photo_id) or abort(404)
    try:
        body = photos.read_photo(photo)
    except StorageError as error:
        current_app.logger.warning("photo %s unreadable: %s", photo.key, error)
        abort(503, "The storage could not be read just now. Reload in a moment.")
    if body is None:
        abort(404, "This photo is not in storage (any more).")
    response = current_app.response_class(body, mimetype="image/jpeg")
    response.headers["Cache-Control"] = "private, no-store"
    return response
