"""Settings Knockout refuses at start, with a message that says what to set instead."""
import subprocess
import sys

import pytest

from quiz import create_app
from quiz.config import ROOT, ConfigError, TestConfig


@pytest.mark.parametrize("url", ["mysql+pymysql://knockout:pw@db/knockout", "mysql://db/knockout",
                                 "mariadb://db/knockout", "oracle://db/knockout"])
def test_a_database_other_than_postgresql_or_sqlite_is_refused_at_start(tmp_path, url):
    config = type("Config", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": url,
                                            "INSTANCE_PATH": str(tmp_path)})
    with pytest.raises(ConfigError, match="runs on PostgreSQL .* MySQL is not supported"):
        create_app(config)


def test_the_cli_says_so_instead_of_failing_later(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "KNOCKOUT_INSTANCE": str(tmp_path),
           "DATABASE_URL": "mysql+pymysql://knockout:pw@db/knockout", "REDIS_URL": "redis://x"}
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "quiz", "db", "upgrade"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "MySQL is not supported" in result.stderr
