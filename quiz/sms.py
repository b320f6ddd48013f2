"""The SMS providers: each backend sends one text to one phone number, or raises SendError."""
import logging
import re

from flask import current_app

from .branding import current_look
from .config_checks import check_sms_settings

log = logging.getLogger(__name__)
# Twilio's library logs every request's URL and headers, and every response's, at INFO (about ten
# lines an SMS): only its warnings.
TWILIO_HTTP_LOG = logging.getLogger(__name__ + ".twilio_http")
TWILIO_HTTP_LOG.setLevel(logging.WARNING)
MESSAGING_SERVICE = re.compile(r"MG[0-9a-fA-F]{32}")  # else a number or an alphanumeric sender ID


class SendError(Exception):
    """A provider said no. `permanent` means retrying cannot help (invalid number, opted out)."""

    def __init__(self, reason: str, permanent: bool):
        super().__init__(reason)
        self.reason, self.permanent = reason, permanent


def aws_client(service: str, endpoint_url: str | None, config):
    """A boto3 client for a message provider (SNS, SES): two tries, short timeouts, so a dead
    provider fails a send within seconds (the message is retried later). boto3 is imported here,
    by the backend that uses it."""
    import boto3
    from botocore.config import Config as BotoConfig
    return boto3.client(service, region_name=config["AWS_REGION"], endpoint_url=endpoint_url,
                        config=BotoConfig(retries={"max_attempts": 2, "mode": "standard"},
                                          connect_timeout=5, read_timeout=10))


class OutboxBackend:
    """The embedded default: the message stays in the database (the console lists it) and in the
    log."""

    name = "outbox"
    external = False

    def send(self, to: str, body: str) -> str | None:
        log.debug("SMS to %s: %s", to, body)
        return None


class SnsBackend:
    """AWS SNS `publish` to a phone number (boto3)."""

    name = "sns"
    external = True
    PERMANENT = {"InvalidParameter", "InvalidParameterValue", "OptedOut", "AuthorizationError",
                 "EndpointDisabled"}

    def __init__(self):
        config = current_app.config
        self.client = self.make_client(config)
        self.attributes = {
            "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": config["SMS_TYPE"]}}

    @staticmethod
    def make_client(config):
        return aws_client("sns", config["SNS_ENDPOINT_URL"], config)

    def message_attributes(self) -> dict:
        """The SMS type, and the sender name from the console's Look page or SMS_SENDER_ID."""
        sender = current_look().sms_sender
        if not sender:
            return self.attributes
        return {**self.attributes,
                "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": sender}}

    def send(self, to: str, body: str) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            answer = self.client.publish(PhoneNumber=to, Message=body,
                                         MessageAttributes=self.message_attributes())
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            reason = f"{code}: {error.response.get('Error', {}).get('Message', '')}".strip(": ")
            raise SendError(reason, permanent=code in self.PERMANENT)
        except BotoCoreError as error:
            raise SendError(str(error), permanent=False)
        return answer.get("MessageId")


class TwilioBackend:
    """Twilio's Messages API through its official library (imported here only: processes that
    never text through Twilio don't load it). TWILIO_FROM is a number (or an alphanumeric sender
    ID) or a messaging service SID (MG…); TWILIO_API_URL points it at another host (tests).

    What a refusal means (`classify`): the codes in PERMANENT, and any other 4xx, are the number or
    the account, not the moment, so the message fails with Twilio's code and message as its reason
    ("Retry failed" once fixed); 429 / 20429 (too many requests), the codes in RETRY and every 5xx
    or network error come back later with backoff (quiz/delivery.py), up to MAX_ATTEMPTS.
    """

    name = "twilio"
    external = True
    PERMANENT = {
        20003: "authentication failed (TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN)",
        20404: "no such account or resource",
        21211: "invalid 'To' number",
        21212: "invalid 'From' number",
        21408: "sending to this region is not enabled on the account",
        21606: "the 'From' number can't send SMS",
        21608: "trial account: the number is not verified",
        21610: "the recipient replied STOP (unsubscribed)",
        21612: "the 'To' number can't be reached by SMS",
        21614: "the 'To' number is not a mobile number",
        21617: "the message is too long",
    }
    RETRY = {20429: "too many requests", 20500: "Twilio internal error",
             20503: "Twilio unavailable", 30001: "queue overflow"}

    def __init__(self):
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client
        config = current_app.config
        check_sms_settings(config)
        self.client = Client(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"],
                             http_client=TwilioHttpClient(timeout=10, logger=TWILIO_HTTP_LOG),
                             environment={})
        if config["TWILIO_API_URL"]:  # the library has no setting for it: its API domain's URL
            self.client.api.base_url = config["TWILIO_API_URL"].rstrip("/")
        sender = config["TWILIO_FROM"]
        self.sender = ({"messaging_service_sid": sender} if MESSAGING_SERVICE.fullmatch(sender)
                       else {"from_": sender})

    @classmethod
    def classify(cls, status: int | None, code: int | None) -> bool:
        """True when retrying cannot help (see the class's docstring)."""
        if code in cls.PERMANENT:
            return True
        if code in cls.RETRY or status is None or status == 429 or status >= 500:
            return False
        return 400 <= status < 500

    def send(self, to: str, body: str) -> str | None:
        from requests import RequestException
        from twilio.base.exceptions import TwilioException
        try:
            message = self.client.messages.create(to=to, body=body, **self.sender)
        except TwilioException as error:
            status, code = getattr(error, "status", None), getattr(error, "code", None)
            text = getattr(error, "msg", None) or getattr(error, "title", None) or str(error)
            meaning = self.PERMANENT.get(code) or self.RETRY.get(code)
            reason = f"{code or status}: {text}" + (f" ({meaning})" if meaning else "")
            raise SendError(reason, permanent=self.classify(status, code))
        except RequestException as error:
            raise SendError(f"network: {type(error).__name__}: {error}", permanent=False)
        return message.sid


BACKENDS = {backend.name: backend for backend in (OutboxBackend, SnsBackend, TwilioBackend)}


def backend():
    """The configured SMS backend (SMS_BACKEND); adding a provider is one class in BACKENDS."""
    name = current_app.config["SMS_BACKEND"]
    if name not in BACKENDS:
        raise RuntimeError(f"SMS_BACKEND={name!r} is not one of: {', '.join(BACKENDS)}")
    return BACKENDS[name]()
