"""The original event's failure, made impossible: round 3's pre-signed links died with the role
session that signed them.

Here forms live on S3 (moto's server, over real HTTP) and are delivered by redirect to a URL
pre-signed at the click. moto does not enforce what S3 does to a pre-signed GET, so the server
below adds exactly those two rules in front of it: a URL past its X-Amz-Expires is refused
("Request has expired"), and so is one signed by session credentials that have since ended
("ExpiredToken"). The app signs with short-lived credentials from STS (AssumeRole), refreshed as
an instance profile's are.
"""
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import boto3
import botocore.session
import pytest
import requests
from botocore.credentials import RefreshableCredentials
from moto.moto_server.werkzeug_app import (DomainDispatcherApplication, MotoRequestHandler,
                                           create_backend_app)
from sqlalchemy import select
from werkzeug.serving import make_server

from quiz.extensions import db, state
from quiz.models import Submission
from quiz.storage import S3Storage

from .helpers import (AWS_TEST_ENV, choice_values, new_bucket, press_start, round_one_code,
                      token_field)

pytestmark = pytest.mark.nodb  # storage and signing: the same on any database


class S3PresignRules:
    """WSGI middleware: S3's checks on a pre-signed GET that moto's server leaves out."""

    def __init__(self, app):
        self.app = app
        self.ended_sessions: set[str] = set()

    def __call__(self, environ, start_response):
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if "X-Amz-Signature" in query:
            access_key = query["X-Amz-Credential"][0].split("/")[0]
            signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(
                tzinfo=timezone.utc)
            if access_key in self.ended_sessions:
                return self.refuse(start_response, "400 Bad Request", "ExpiredToken",
                                   "The provided token has expired.")
            if (datetime.now(timezone.utc)
                    > signed + timedelta(seconds=int(query["X-Amz-Expires"][0]))):
                return self.refuse(start_response, "403 Forbidden", "AccessDenied",
                                   "Request has expired")
        return self.app(environ, start_response)

    @staticmethod
    def refuse(start_response, status, code, message):
        start_response(status, [("Content-Type", "application/xml")])
        return [f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()]


@pytest.fixture(scope="module")
def strict_s3():
    """moto's S3 on loopback behind S3PresignRules; yields (endpoint, rules)."""
    rules = S3PresignRules(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, rules, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", rules
    server.shutdown()
    thread.join()


def role_session(endpoint: str) -> boto3.Session:
    """A boto3 session whose credentials come from STS AssumeRole and are renewed as they near their
    end."""
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")

    def assume() -> dict:
        credentials = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/knockout-web",
                                      RoleSessionName="web", DurationSeconds=900)["Credentials"]
        # Always inside botocore's refresh window, so every signature uses a fresh session's keys.
        return {"access_key": credentials["AccessKeyId"],
                "secret_key": credentials["SecretAccessKey"], "token": credentials["SessionToken"],
                "expiry_time": (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()}

    core = botocore.session.get_session()
    core._credentials = RefreshableCredentials.create_from_metadata(assume(), assume,
                                                                    "sts-assume-role")
    return boto3.Session(botocore_session=core)


@pytest.fixture
def s3_forms(app, strict_s3, monkeypatch):
    endpoint, rules = strict_s3
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    app.config.update(FORMS_DELIVERY="redirect", FORMS_URL_EXPIRY_SECONDS=60)
    store = S3Storage(new_bucket(endpoint), "event", endpoint_url=endpoint, region="us-east-1",
                      session=role_session(endpoint))
    state(app).storage = store
    return rules


@pytest.fixture
def started(app, client, s3_forms, load_bank, make_participant, run_jobs, api_headers):
    """One player, their forms on S3, round 1 open and Start pressed; returns their /f/ code."""
    code = round_one_code(client, api_headers, load_bank, make_participant, run_jobs)
    press_start(client, code)
    return code


def click(client, code) -> str:
    """Open the /f/ link as the SMS gave it: Knockout answers with a freshly signed URL."""
    response = client.get(f"/f/{code}")
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return response.headers["Location"]


def signer(url: str) -> str:
    return parse_qs(urlparse(url).query)["X-Amz-Credential"][0].split("/")[0]


def test_the_link_outlives_the_credentials_that_signed_it(app, client, started, s3_forms):
    first = click(client, started)
    assert signer(first).startswith("ASIA")  # temporary credentials, as a role gives
    page = requests.get(first, timeout=10)
    assert page.status_code == 200 and "<strong>Grace</strong>" in page.text

    s3_forms.ended_sessions.add(signer(first))  # hours later, the role session that signed it ends
    dead = requests.get(first, timeout=10)
    # what broke round 3 of the original event
    assert dead.status_code == 400 and "ExpiredToken" in dead.text

    second = click(client, started)  # the same /f/ link from the same SMS
    assert signer(second) != signer(first)
    page = requests.get(second, timeout=10)
    assert page.status_code == 200 and "<strong>Grace</strong>" in page.text

    # The stored form's answers go to Knockout and count.
    name, token = token_field(page.text)
    data = {name: token, **{field: [options["S3"] if "S3" in options else options["RDS"]]
                            for field, options in choice_values(page.text).items()}}
    action = urlparse(page.text.split('action="', 1)[1].split('"', 1)[0]).path
    assert action == f"/f/{started}/submit"
    assert client.post(action, data=data).status_code == 303
    assert db.session.scalar(select(Submission.score)) == 1


def test_an_expired_url_is_replaced_on_the_next_click(app, client, started):
    # (a few seconds each way: on a busy machine a second passed between a click and its GET)
    app.config["FORMS_URL_EXPIRY_SECONDS"] = 3
    first = click(client, started)
    assert requests.get(first, timeout=10).status_code == 200
    time.sleep(4.2)
    expired = requests.get(first, timeout=10)
    assert expired.status_code == 403 and "Request has expired" in expired.text
    app.config["FORMS_URL_EXPIRY_SECONDS"] = 60
    again = click(client, started)
    assert again != first and requests.get(again, timeout=10).status_code == 200
