"""Question types, a small registry of classes: each kind parses itself from the bank, renders,
reads and marks.

`QUESTION_TYPES[question.kind]` (or `question.type`) is the one place a kind's behaviour lives; the
rest of Knockout asks it. Adding a kind is a class here, its partial in templates/play/, and nothing
else.
"""
import yaml
from flask import current_app
from flask_babel import lazy_gettext as _l

from . import scoring
from .bank_images import choice_node, image_ref
from .bank_yaml import BankError, line_of, scalar, sequence
from .errors import QuizError
from .images import PhotoError, prepare_photo
from .statuses import PhotoStatus


# A choice value that isn't one of this player's for the question (another player's, another
# round's, an older page's, made up): quiz/deal.py.
FOREIGN_CHOICE = "foreign_choice"


class AnswerError(QuizError):
    """One question's answer cannot be taken as sent; the message says what to fix."""

    def __init__(self, message: str, status: int = 422, code: str = "invalid"):
        super().__init__(message, code=code, status=status)


class QuestionType:
    """What every kind answers to; `partial` renders it inside the questions form."""

    kind = ""
    partial = ""
    upload = False  # its answer is a file: the round's form becomes multipart/form-data
    keys = {"type", "text", "points", "image", "alt"}
    required = ("text",)

    def parse(self, spec: dict, where: str, node) -> dict:
        """The question's columns from its bank mapping (`spec`: key → YAML node); BankError names
        the line."""
        for key in self.required:
            if key not in spec:
                raise BankError(line_of(node), f"{where} has no '{key}'.")
        extra = sorted(set(spec) - self.keys)
        if extra:
            raise BankError(line_of(spec[extra[0]]),
                            f"{where} is a {self.kind} question: it takes no '{extra[0]}'.")
        text = scalar(spec["text"], f"{where} text", str, lambda v: v.strip(),
                      "should not be empty")
        points = 1
        if "points" in spec:
            points = scalar(spec["points"], f"{where} points", int, lambda v: 1 <= v <= 1000,
                            "should be 1 to 1000")
        result = {"kind": self.kind, "text": text.strip(), "choices": [], "answer": [],
                  "points": points}
        picture = image_ref(spec, where)  # read and stored by quiz/question_images.py
        if picture:
            result["images"] = {"question": picture, "choices": {}}
        return result

    def read(self, question, form, files, number: int):
        """The answer to store (JSON), from the submitted form; AnswerError says what to fix.
        `question` is the player's (answer_sheet.Asked): `values` maps their choice values to
        choices."""
        raise NotImplementedError

    def mark(self, question, answer, review: str | None) -> bool:
        """Whether `answer` is right (`review`: staff's decision, for kinds a person judges)."""
        raise NotImplementedError


class MultipleChoice(QuestionType):
    """Pick one choice, or several when the answer lists several."""

    kind = "choice"
    partial = "play/_question_choice.html"
    keys = {"type", "text", "choices", "answer", "points", "image", "alt"}
    required = ("text", "choices", "answer")

    def parse(self, spec: dict, where: str, node) -> dict:
        result = super().parse(spec, where, node)
        choices, pictures = [], {}
        for c in sequence(spec["choices"], f"{where} choices"):
            text_node, picture = choice_node(c, f"{where} choice")
            choices.append(scalar(text_node, f"{where} choice", str, lambda v: v.strip(),
                                  "should not be empty"))
            if picture:
                pictures[choices[-1]] = picture
        if len(choices) < 2:
            raise BankError(line_of(spec["choices"]), f"{where} needs at least two choices.")
        if len(set(choices)) != len(choices):
            raise BankError(line_of(spec["choices"]), f"{where} lists the same choice twice.")
        answer_nodes = (spec["answer"].value if isinstance(spec["answer"], yaml.SequenceNode)
                        else [spec["answer"]])
        answer = [scalar(a, f"{where} answer", str) for a in answer_nodes]
        for value, a_node in zip(answer, answer_nodes):
            if value not in choices:
                raise BankError(line_of(a_node),
                                f"{where} answer '{value}' is not one of its choices.")
        if not answer or len(set(answer)) != len(answer):
            raise BankError(line_of(spec["answer"]),
                            f"{where} needs one answer, or a list of distinct answers.")
        if pictures:
            result["images"] = {"question": None, **result.get("images", {}), "choices": pictures}
        return {**result, "choices": choices, "answer": answer}

    def read(self, question, form, files, number: int) -> list[str]:
        raw = form.getlist(f"q{question.id}")
        # Only this player's values for this question count: nothing else names a choice.
        picked = sorted({question.values.get(value, -1) for value in raw})
        if -1 in picked or len(picked) != len(raw):
            raise AnswerError(_l("Question %(number)s: that choice isn't one of the options "
                                      "on your page (another player's, or an older page's). "
                                      "Reload the page and choose again.", number=number),
                              code=FOREIGN_CHOICE)
        if not picked:
            raise AnswerError(_l("Question %(number)s needs an answer.", number=number))
        if len(picked) > 1 and not question.multiple:
            raise AnswerError(_l("Question %(number)s takes one answer.", number=number))
        return [question.choices[i] for i in picked]

    def mark(self, question, answer, review: str | None) -> bool:
        return scoring.is_correct(question.answer, answer)


class Photo(QuestionType):
    """A photo taken on the phone ("selfie at booth 12"); staff accept or reject it in the
    console."""

    kind = "photo"
    partial = "play/_question_photo.html"
    upload = True

    def read(self, question, form, files, number: int) -> bytes:
        """The photo, checked and re-encoded (images.prepare_photo); stored once the submission is
        in."""
        upload = files.get(f"q{question.id}") if files else None
        if upload is None or not upload.filename:
            raise AnswerError(_l("Question %(number)s needs a photo: take one, or pick one "
                                      "from your phone.", number=number))
        config = current_app.config
        # from the start: write() runs the submit again when the database was busy
        upload.stream.seek(0)
        try:
            return prepare_photo(upload.stream, config["PHOTO_MAX_BYTES"],
                                 config["PHOTO_MAX_PIXELS"], config["PHOTO_DECODES_PER_PROCESS"])
        except PhotoError as error:
            raise AnswerError(_l("Question %(number)s: %(problem)s", number=number,
                                      problem=error.message), error.status)

    def mark(self, question, answer, review: str | None) -> bool:
        return review == PhotoStatus.ACCEPTED  # until staff accept it, a photo is not (yet) right


QUESTION_TYPES: dict[str, QuestionType] = {cls.kind: cls() for cls in (MultipleChoice, Photo)}

