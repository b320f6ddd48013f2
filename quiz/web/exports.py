"""The console's exports: results as CSV files to download."""
from flask import Blueprint, Response, abort, current_app, render_template, stream_with_context

from ..exports import EXPORTS, csv_lines, filename
from ..models import Role
from .roles import requires

bp = Blueprint("exports", __name__, url_prefix="/admin/exports")


@bp.get("")
@requires(Role.VIEWER)
def index():
    """Every export, with what it holds and a download link."""
    return render_template("admin/exports.html", exports=EXPORTS.values())


@bp.get("/<name>.csv")
@requires(Role.VIEWER)
def download(name):
    """One export as a CSV attachment, streamed row by row."""
    export = EXPORTS.get(name)
    if export is None:
        abort(404, f"There is no export called '{name}'. Pick one of: {', '.join(EXPORTS)}.")
    response = Response(stream_with_context(csv_lines(export)), mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{filename(name, current_app.config["EVENT_NAME"])}"')
    # personal data: never kept by a proxy or the browser cache
    response.headers["Cache-Control"] = "no-store"
    return response
