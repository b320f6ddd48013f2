"""Domain errors: a code for programs and a message a person can act on."""
from flask_babel import lazy_gettext as _l


class QuizError(Exception):
    """A rule said no; `message` tells the person what happened and what to do."""

    status = 409

    def __init__(self, message: str, code: str, status: int | None = None,
                 fields: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.fields = fields or {}
        if status is not None:
            self.status = status


class ValidationError(QuizError):
    """Input that cannot be accepted as sent; `fields` maps each field to what to fix."""

    status = 422

    def __init__(self, fields: dict[str, str], message: str | None = None):
        super().__init__(message or _l("Please fix the highlighted fields."), code="invalid",
                         fields=fields)
