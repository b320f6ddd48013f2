"""Question pictures for everyone (phones, stored forms, the projector): /q/img/<hash>.<size>.webp,
cached for a year (a key names its content), and the template helpers that point at them."""
from flask import Blueprint, abort, current_app, request
from jinja2 import pass_context

from .. import question_images
from ..storage import StorageError

bp = Blueprint("question_images", __name__)
CACHE = "public, max-age=31536000, immutable"


@bp.get("/q/img/<digest>.<size>.webp")
def image(digest, size):
    """A question's or choice's picture at one size ("phone" or "stage"); 304 when the browser has
    it (ETag)."""
    try:
        body = question_images.read(digest, size)
    except (StorageError, OSError) as error:
        current_app.logger.warning("question image %s.%s unreadable: %s", digest, size, error)
        abort(503, "The storage could not be read just now. Reload in a moment.")
    if body is None:
        abort(404, "There is no such picture. Reload the page.")
    response = current_app.response_class(body, mimetype=question_images.WEBP)
    response.headers["Cache-Control"] = CACHE
    response.set_etag(f"{digest}.{size}")
    return response.make_conditional(request)


def _base(context) -> str | None:
    """Stored forms (self-contained pages under forms/) name pictures by absolute URL."""
    return context.get("base_url")


@bp.app_template_global()
@pass_context
def question_image(context, question, size: str = "phone"):
    """{src, width, height, alt} of the question's picture at `size`, or None."""
    return question_images.question_image(question, size, _base(context))


@bp.app_template_global()
@pass_context
def choice_image(context, question, text: str, size: str = "phone"):
    """{src, width, height, alt} of a choice's picture (by its text) at `size`, or None."""
    return question_images.choice_image(question, text, size, _base(context))
