"""The web layer: one blueprint per audience, routes kept thin."""
from flask import Flask

from ..extensions import csrf
from . import (admin, alerts, api, brand, desk, display, errors, exports, join, look, messages,
               photos, play, roles, staff, stored_forms, undo, ws)

BLUEPRINTS = (play, display, admin, messages, desk, stored_forms, exports, photos, staff, roles,
              undo, alerts, api, ws, errors, join, brand, look)


def register_blueprints(app: Flask) -> None:
    """Every blueprint; the JSON API takes no cookies, so it needs no CSRF token."""
    for module in BLUEPRINTS:
        app.register_blueprint(module.bp)
    csrf.exempt(api.bp)
