"""The question bank as data: exported from the database, edited in the console, written back as
YAML — every change checked by the loader itself (quiz/questions.py), so that the console and the
file can never disagree.

An edit is: export the bank (a list of round mappings, as the YAML has them), change it, write it
as YAML, parse that with `parse_bank` (the loader's own checks and messages), and apply the result
with `apply_bank` (idempotent, all or nothing). Only draft rounds change: an open or closed round is
refused with a 409 before anything is tried.

Pictures: storage keeps each picture's file as the bank gave it (quiz/question_images.py), not its
path. `questions export FILE` writes it into a `pictures/` folder beside FILE, named by its hash,
and the YAML names it there (`image:`, `alt:`): loading that gives the same hash, so the same rows.
Where no file can be written (the console's download, the screen) or none was kept, the YAML
leaves `image` and `alt` out and lists the picture in a comment at its top. The editor keeps the
pictures in a hidden `_images` key, put back on the parsed questions so that an edit never loses
a picture (a choice's picture goes with its choice's text: renaming the choice drops it).
"""
from pathlib import Path

import yaml
from sqlalchemy import select

from . import question_images
from .bank_yaml import BankError
from .errors import QuizError
from .extensions import db
from .models import Challenge
from .questions import RoundSpec, apply_bank, parse_bank

SETTINGS = ("time_limit_seconds", "keep_fraction", "keep_count", "scoring", "draw")
PICTURES = "pictures"  # the exported pictures' folder, beside the exported file
MAGIC = {b"\x89PNG": ".png", b"\xff\xd8": ".jpg", b"GIF8": ".gif"}
HEADER = ("# Knockout's question bank, exported. Load it with\n"
          "#   flask --app quiz questions load FILE\n")


def current_bank() -> list[dict]:
    """Every round in the database as the bank's YAML writes it (questions with `_images`)."""
    challenges = db.session.scalars(select(Challenge).order_by(Challenge.number))
    return [_round(challenge) for challenge in challenges]


def _round(challenge: Challenge) -> dict:
    result = {"number": challenge.number, "title": challenge.title,
              "time_limit_seconds": challenge.time_limit_seconds,
              "keep_fraction": challenge.keep_fraction}
    if challenge.keep_count is not None:
        result["keep_count"] = challenge.keep_count
    result["scoring"] = challenge.scoring
    if challenge.draw is not None:
        result["draw"] = challenge.draw
    result["questions"] = [_question(q) for q in challenge.questions]
    return result


def _question(question) -> dict:
    result = {} if question.kind == "choice" else {"type": question.kind}
    result["text"] = question.text
    if question.kind == "choice":
        result["choices"] = list(question.choices)
        answer = list(question.answer)
        result["answer"] = answer[0] if len(answer) == 1 else answer
    result["points"] = question.points
    if question.images:
        result["_images"] = question.images
    return result


class _Dumper(yaml.SafeDumper):
    """Lists of plain values in flow style (`choices: [EC2, S3]`), mappings in block style."""


def _list(dumper, data):
    flow = all(isinstance(item, (str, int, float)) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _list)


def bank_yaml(rounds: list[dict], folder: Path | None = None) -> str:
    """The bank as YAML the loader reads back to the same rounds. Pictures: with `folder` (the
    exported file's), each picture's original is written into its `pictures/` and named by
    `image:`; one without a kept original (or with no folder) is named in a comment instead."""
    notes: list[str] = []
    plain = [{**r, "questions": [_plain(q, f"round {r['number']} question {i}", folder, notes)
                                 for i, q in enumerate(r["questions"], start=1)]}
             for r in rounds]
    header = HEADER
    if notes:
        header += ("# Pictures not exported (the web export writes no files, and a bank loaded "
                   "before originals were\n# kept has only their drawings): put `image: FILE` "
                   "(and `alt:`) back on these before loading,\n# or they are taken off:\n"
                   + "\n".join(f"#   {note}" for note in notes) + "\n")
    body = yaml.dump({"challenges": plain}, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     width=1000, default_flow_style=False)
    return header + body


def _plain(question: dict, where: str, folder: Path | None, notes: list[str]) -> dict:
    """A question as the YAML has it: its pictures as `image:` paths, or in `notes`."""
    result = {k: v for k, v in question.items() if not k.startswith("_")}
    images = question.get("_images") or {}
    if images.get("question"):
        written = _written(images["question"], folder)
        if written:
            items = list(result.items())
            at = list(result).index("text") + 1  # `image:` after the text, as a bank writes it
            result = dict(items[:at] + list(written.items()) + items[at:])
        else:
            notes.append(f"{where}: its picture {_described(images['question'])}")
    for text, image in images.get("choices", {}).items():
        written = _written(image, folder)
        if written and text in result.get("choices", []):
            result["choices"] = [{"text": c, **written} if c == text else c
                                 for c in result["choices"]]
        else:
            notes.append(f"{where}: choice '{text}' {_described(image)}")
    return result


def _written(image: dict, folder: Path | None) -> dict | None:
    """The picture's original written into `folder`/pictures/ (named by its hash): its `image:`
    and `alt:`; None without a folder or a kept original."""
    data = question_images.original(image["hash"]) if folder is not None else None
    if data is None:
        return None
    name = f"{PICTURES}/{image['hash']}{_extension(data)}"
    (folder / PICTURES).mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return {"image": name, **({"alt": image["alt"]} if image.get("alt") else {})}


def _extension(data: bytes) -> str:
    """A file name's ending for the picture (the loader reads the content, not the name)."""
    for magic, extension in MAGIC.items():
        if data.startswith(magic):
            return extension
    return ".webp" if data[8:12] == b"WEBP" else ".img"


def _described(image: dict) -> str:
    alt = f", alt '{image['alt']}'" if image.get("alt") else ""
    return f"(stored as {image['hash']}{alt})"


def checked(rounds: list[dict]) -> list[RoundSpec]:
    """The edited bank through the loader's checks: its rounds, with their pictures kept; a
    BankError (the loader's message) when it would not load."""
    specs = parse_bank(bank_yaml(rounds), None)
    by_number = {r["number"]: r for r in rounds}
    for spec in specs:
        for question, edited in zip(spec.questions, by_number[spec.number]["questions"]):
            images = _kept(edited.get("_images"), question["choices"])
            if images:
                question["images"] = images
    return specs


def _kept(images: dict | None, choices: list[str]) -> dict | None:
    if not images:
        return None
    kept = {"question": images.get("question"),
            "choices": {t: i for t, i in images.get("choices", {}).items() if t in choices}}
    return kept if kept["question"] or kept["choices"] else None


def save(rounds: list[dict]) -> list[str]:
    """Check the edited bank as the loader would and apply it like a load; what changed. The
    caller commits (write())."""
    return apply_bank(checked(rounds))


def draft_numbers() -> set[int]:
    """The numbers of the rounds that may still change."""
    return set(db.session.scalars(select(Challenge.number).where(Challenge.is_draft)))


def draft_round(rounds: list[dict], number: int) -> dict:
    """Round `number` of the bank, if it may change: 404 without it, 409 unless it is a draft."""
    challenge = db.session.scalar(select(Challenge).where(Challenge.number == number))
    if challenge is None:
        raise QuizError(f"There is no round {number}.", code="not_found", status=404)
    if not challenge.is_draft:
        raise QuizError(f"Round {number} is {challenge.status}: only a draft round's settings and "
                        "questions can change (the players have seen it).",
                        code="round_not_draft", status=409)
    return next(r for r in rounds if r["number"] == number)


def question_at(round_: dict, index: int) -> int:
    """The list index of question `index` (from 1) of the round; 404 when it has none such."""
    if not 1 <= index <= len(round_["questions"]):
        raise QuizError(f"Round {round_['number']} has no question {index}.", code="not_found",
                        status=404)
    return index - 1


def move(round_: dict, index: int, step: int) -> None:
    """Swap question `index` (from 1) with its neighbour `step` (-1 up, +1 down), if it has one."""
    at = question_at(round_, index)
    other = at + step
    questions = round_["questions"]
    if 0 <= other < len(questions):
        questions[at], questions[other] = questions[other], questions[at]


def problem(error: BankError) -> str:
    """The loader's message without its line (the console has no file to point into)."""
    return error.problem[0].upper() + error.problem[1:] if error.problem else str(error)
