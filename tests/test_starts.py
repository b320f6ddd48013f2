"""A restarted process serves at once: the heavy modules (boto3, Alembic, Pillow, segno, the SMS
providers, requests) are imported where they are used, not when the web or a worker starts. How
long a start takes is measured in bench/starts.py; here, only what is loaded."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from quiz.config import ROOT

pytestmark = [pytest.mark.nodb, pytest.mark.sqlite_pass]

# Imported where used: S3 and SNS (boto3), migrations (Flask-Migrate, Alembic), photos (Pillow),
# QR codes (segno), Twilio, `flask rehearse` (requests), the first join (phonenumbers,
# email-validator).
LAZY = ("boto3", "botocore", "alembic", "flask_migrate", "PIL", "segno", "twilio", "requests",
        "phonenumbers", "email_validator")
LOADED = ("import json, sys; "
          "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {lazy!r})))")


def run(code: str, tmp_path: Path, redis_url: str, *args: str) -> subprocess.CompletedProcess:
    """Python (or `flask`, with args) in a fresh process on a throwaway instance, as a deploy runs
    it."""
    env = {"PATH": os.environ["PATH"], "KNOCKOUT_INSTANCE": str(tmp_path / "instance"),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'k.db'}", "REDIS_URL": redis_url,
           "SECRET_KEY": "starts", "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "flask", "--app", "quiz", *args] if args else \
        [sys.executable, "-c", code]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def loaded_after(statement: str, tmp_path: Path, redis_url: str) -> list[str]:
    done = run(f"{statement}\n" + LOADED.format(lazy=set(LAZY)), tmp_path, redis_url)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_a_web_process_starts_without_the_heavy_modules(tmp_path, redis_url):
    """What gunicorn's workers import (wsgi.py: create_app included)."""
    assert loaded_after("import wsgi", tmp_path, redis_url) == []


def test_a_worker_starts_without_them_either(tmp_path, redis_url):
    """What worker.py does before it takes its first job: the app, its context, the worker
    module."""
    statement = ("import worker\nfrom quiz import create_app\nimport quiz.worker, quiz.tasks\n"
                 "create_app().app_context().push()")
    assert loaded_after(statement, tmp_path, redis_url) == []


def test_each_is_imported_where_it_is_used(tmp_path, redis_url):
    """A QR code, a photo, S3 storage, a phone number: each loads its own library (the names
    above are real)."""
    statement = (
        "from quiz import create_app\napp = create_app()\napp.app_context().push()\n"
        "from quiz.qr import qr_svg\nqr_svg('x')\n"
        "from quiz.images import prepare_photo, PhotoError\n"
        "try:\n    prepare_photo(b'not a photo', 10**6, 10**6)\nexcept PhotoError:\n    pass\n"
        "from quiz.storage import S3Storage\n"
        "S3Storage('bucket', endpoint_url='http://127.0.0.1:9', region='us-east-1')\n"
        "from quiz.registration import check_field\ncheck_field('phone', '+1 415 555 0100')\n"
        "check_field('email', 'ada@example.com')")
    assert set(loaded_after(statement, tmp_path, redis_url)) >= {
        "segno", "PIL", "boto3", "botocore", "phonenumbers", "email_validator"}


def test_flask_db_still_migrates(tmp_path, redis_url):
    """Flask-Migrate is bound when `flask db` runs: upgrade, then current names the head."""
    upgraded = run("", tmp_path, redis_url, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    current = run("", tmp_path, redis_url, "db", "current")
    assert current.returncode == 0 and "(head)" in current.stdout, current.stderr
    listed = run("", tmp_path, redis_url, "--help")
    assert "Perform database migrations." in listed.stdout
    assert "rehearse" in listed.stdout
