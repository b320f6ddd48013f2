"""The console's question editor: rounds' settings and questions of draft rounds, added, edited,
deleted and reordered (quiz/bank_edit.py: every change goes through the bank loader's checks), and
the bank exported as YAML."""
from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import bank_edit
from ..audit import record
from ..bank_yaml import BankError
from ..errors import QuizError
from ..models import SCORING_MODES, Role
from .confirm import confirm_first, to_delete_question
from .handling import wants_fragment, write
from .roles import requires

bp = Blueprint("questions", __name__, url_prefix="/admin/questions")


@bp.get("/")
@requires(Role.VIEWER)
def editor():
    """Every round and its questions; a draft round's can be changed here."""
    return _page()


@bp.get("/export.yaml")
@requires(Role.VIEWER)
def export():
    """The bank as YAML, to keep or to load again (`flask --app quiz questions load FILE`)."""
    return Response(bank_edit.bank_yaml(bank_edit.current_bank()),
                    mimetype="application/yaml",
                    headers={"Content-Disposition": 'attachment; filename="questions.yaml"'})


def _page(form: str = "", error: str = "", values=None, status: int = 200):
    """The editor (only its list, for htmx), the refused form's message and values beside it."""
    context = {"rounds": bank_edit.current_bank(), "drafts": bank_edit.draft_numbers(),
               "form": form, "error": error, "values": values or {}, "scoring_modes": SCORING_MODES}
    template = "admin/_bank.html" if wants_fragment() else "admin/questions.html"
    return render_template(template, **context), status


def _edit(form: str, change, done: str):
    """Run `change(rounds)` on the exported bank, check it as the loader would and apply it; the
    list again (or the page, without htmx), or the loader's message beside `form` (422), a draft
    rule's (409) or a missing question's (404), nothing changed."""
    def operation():
        rounds = bank_edit.current_bank()
        change(rounds)
        changes = bank_edit.save(rounds)
        record(current_user.username, "edit questions", None, "; ".join(changes) or "no change")
        return changes
    try:
        changes = write(operation)
    except BankError as error:
        return _page(form, bank_edit.problem(error), request.form, 422)
    except QuizError as error:  # not the form's fault (a round no longer draft): above the list
        return _page("", error.message, request.form, error.status)
    message = f"{done}." if changes else "Nothing to change."
    if wants_fragment():
        return _page(form, "", {"ok": message})
    flash(message, "ok")
    return redirect(url_for("questions.editor"), 303)


def _number(value: str | None):
    """A form's number as the YAML would hold it: a whole number, a decimal, or the text as typed
    (so that the loader names what is wrong with it); None when empty."""
    value = (value or "").strip()
    if not value:
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _lines(name: str) -> list[str]:
    return [line.strip() for line in request.form.get(name, "").splitlines() if line.strip()]


def _question(kind: str) -> dict:
    """A question from the form: text, choices and answers one a line, points."""
    result = {} if kind == "choice" else {"type": kind}
    result["text"] = request.form.get("text", "")
    if kind == "choice":
        answer = _lines("answer")
        result["choices"] = _lines("choices")
        result["answer"] = answer[0] if len(answer) == 1 else answer
    points = _number(request.form.get("points"))
    result["points"] = 1 if points is None else points
    return result


def _settings(round_: dict) -> None:
    """A round's settings from the form into `round_` (an empty box: the loader's default)."""
    round_["title"] = request.form.get("title", "")
    round_["time_limit_seconds"] = _number(request.form.get("time_limit_seconds"))
    for key in ("keep_fraction", "keep_count", "draw"):
        round_.pop(key, None)
        value = _number(request.form.get(key))
        if value is not None:
            round_[key] = value
    round_["scoring"] = request.form.get("scoring", "accuracy")
    round_["questions"] = round_.pop("questions", [])  # last, as the YAML has it


@bp.post("/rounds")
@requires(Role.HOST)
def add_round():
    """A new draft round: its number, settings and first question."""
    def change(rounds):
        round_ = {"number": _number(request.form.get("number"))}
        _settings(round_)
        round_["questions"] = [_question(request.form.get("type", "choice"))]
        rounds.append(round_)
    return _edit("new-round", change, "Round added")


@bp.post("/rounds/<int:number>")
@requires(Role.HOST)
def save_round(number):
    """A draft round's title, time limit, cut, scoring and draw."""
    return _edit(f"round-{number}", lambda rounds: _settings(bank_edit.draft_round(rounds, number)),
                 f"Round {number} saved")


@bp.post("/rounds/<int:number>/questions")
@requires(Role.HOST)
def add_question(number):
    """A question at the end of a draft round."""
    def change(rounds):
        round_ = bank_edit.draft_round(rounds, number)
        round_["questions"].append(_question(request.form.get("type", "choice")))
    return _edit(f"new-{number}", change, f"Question added to round {number}")


@bp.post("/rounds/<int:number>/questions/<int:index>")
@requires(Role.HOST)
def save_question(number, index):
    """A draft round's question, changed (its kind stays)."""
    def change(rounds):
        round_ = bank_edit.draft_round(rounds, number)
        at = bank_edit.question_at(round_, index)
        old = round_["questions"][at]
        new = _question(old.get("type", "choice"))
        if old.get("_images"):
            new["_images"] = old["_images"]
        round_["questions"][at] = new
    return _edit(f"q-{number}-{index}", change, f"Round {number} question {index} saved")


@bp.post("/rounds/<int:number>/questions/<int:index>/delete")
@requires(Role.HOST)
@confirm_first(to_delete_question)
def delete_question(number, index):
    """Take a question out of a draft round (a round keeps at least one)."""
    def change(rounds):
        round_ = bank_edit.draft_round(rounds, number)
        del round_["questions"][bank_edit.question_at(round_, index)]
    return _edit(f"q-{number}-{index}", change, f"Round {number} question {index} deleted")


@bp.post("/rounds/<int:number>/questions/<int:index>/move")
@requires(Role.HOST)
def move_question(number, index):
    """Move a question up or down in its draft round."""
    direction = request.form.get("direction", "")
    if direction not in ("up", "down"):
        return _page(f"q-{number}-{index}", "Move a question 'up' or 'down'.", request.form, 422)
    step = -1 if direction == "up" else 1
    return _edit(f"q-{number}-{index}",
                 lambda rounds: bank_edit.move(bank_edit.draft_round(rounds, number), index, step),
                 f"Round {number} question {index} moved {direction}")
