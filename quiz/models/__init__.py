"""Every table. The database is the source of truth; constraints guard the rules.

One module per part of the game; import the models from here (`from quiz.models import Challenge`).
"""
from ..statuses import HelpStatus, MessageStatus, PhotoStatus, ReminderStatus, Role, RoundStatus
from .columns import (ELIMINATION_REASONS, PARTICIPANT_FILLFACTOR, SCORING_MODES,
                      SUBMISSION_FILLFACTOR, status_column)
from .game import (RANKING_ORDER, ByKind, Challenge, FormLink, PhotoAnswer, Question,
                   Submission)
from .look import EventLook
from .messages import EmailTemplate, Message, MessageTemplate, Reminder
from .players import CHECKIN_ALPHABET, CHECKIN_LENGTH, Participant, new_checkin_code
from .staff import HELP_KINDS, AdminUser, AuditEntry, HelpRequest

__all__ = [
    "ELIMINATION_REASONS", "PARTICIPANT_FILLFACTOR", "SCORING_MODES", "SUBMISSION_FILLFACTOR",
    "status_column", "RANKING_ORDER", "ByKind", "Challenge", "FormLink", "PhotoAnswer", "Question",
    "Submission", "EmailTemplate", "Message", "MessageTemplate", "Reminder", "CHECKIN_ALPHABET",
    "CHECKIN_LENGTH",
    "Participant", "new_checkin_code", "HELP_KINDS", "AdminUser", "AuditEntry", "HelpRequest",
    "EventLook", "HelpStatus", "MessageStatus", "PhotoStatus", "ReminderStatus", "Role",
    "RoundStatus",
]
