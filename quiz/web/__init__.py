"""The web layer: one blueprint per audience, routes kept thin."""
from flask import Flask

from ..extensions import csrf
from . import (admin, alerts, api, desk, display, errors, exports, join, messages, photos, play,
               question_images, roles, staff, stored_forms, undo, ws)

BLUEPRINTS = (play, display, admin, messages, desk, stored_forms, exports, photos, staff, roles,
              undo, alerts, api, ws, errors, join, question_images)


def register_blueprints(app: Flask) -> None:
    """Every blueprint; the JSON API takes no cookies, so it needs no CSRF token."""
    for module in BLUEPRINTS:
        app.register_blueprint(module.bp)
    csrf.exempt(api.bp)
