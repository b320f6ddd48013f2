"""The web layer: one blueprint per audience, routes kept thin."""
from flask import Flask

from ..extensions import csrf
from . import (admin, alerts, api, brand, confirm, desk, display, email_admin, errors, exports,
               join, language, look, messages, photos, play, question_images, questions, reveal,
               roles, staff, stored_forms, undo, unsubscribe, ws)

BLUEPRINTS = (play, display, admin, messages, email_admin, desk, stored_forms, exports, photos,
              staff, roles, undo, reveal, alerts, unsubscribe, api, ws, errors, join,
              question_images, brand, look, questions, language, confirm)


def register_blueprints(app: Flask) -> None:
    """Every blueprint; the JSON API takes no cookies, so it needs no CSRF token."""
    for module in BLUEPRINTS:
        app.register_blueprint(module.bp)
    csrf.exempt(api.bp)
