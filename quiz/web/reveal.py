"""The console's reveal controls: step the projector through a final round's questions
(quiz/reveal.py)."""
from flask import Blueprint
from flask_login import current_user

from .. import reveal
from ..audit import record
from ..clock import utcnow
from ..models import Role
from .admin import act
from .roles import requires

bp = Blueprint("reveal", __name__, url_prefix="/admin")


def _move(number: int, delta: int, action: str):
    def operation():
        challenge, step, steps = reveal.move(number, delta, utcnow())
        return record(current_user.username, action, challenge,
                      f"round {number}: {reveal.step_label(step, steps)}")
    return act(operation, lambda c: f"The projector shows round {number}'s "
                                    f"{reveal.step_label(*_state(c))}.",
               failure="Reveal not moved: {}")


def _state(challenge) -> tuple[int, int]:
    return challenge.reveal_step, len(reveal.revealed_questions(challenge))


@bp.post("/rounds/<int:number>/reveal/next")
@requires(Role.HOST)
def reveal_next(number):
    """Show the next question of the round's reveal on the projector (after the last: the
    leaderboard)."""
    return _move(number, 1, "reveal next")


@bp.post("/rounds/<int:number>/reveal/previous")
@requires(Role.HOST)
def reveal_previous(number):
    """Show the previous question of the round's reveal on the projector."""
    return _move(number, -1, "reveal previous")
