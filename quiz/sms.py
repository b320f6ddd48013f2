"""The SMS providers: each backend sends one text to one phone number, or raises SendError."""
import logging

from flask import current_app

log = logging.getLogger(__name__)


class SendError(Exception):
    """A provider said no. `permanent` means retrying cannot help (invalid number, opted out)."""

    def __init__(self, reason: str, permanent: bool):
        super().__init__(reason)
        self.reason, self.permanent = reason, permanent


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
        if config["SMS_SENDER_ID"]:
            self.attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String",
                                                       "StringValue": config["SMS_SENDER_ID"]}

    @staticmethod
    def make_client(config):
        import boto3
        from botocore.config import Config as BotoConfig
        return boto3.client("sns", region_name=config["AWS_REGION"],
                            endpoint_url=config["SNS_ENDPOINT_URL"],
                            config=BotoConfig(retries={"max_attempts": 2, "mode": "standard"},
                                              connect_timeout=5, read_timeout=10))

    def send(self, to: str, body: str) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            answer = self.client.publish(PhoneNumber=to, Message=body,
                                         MessageAttributes=self.attributes)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            reason = f"{code}: {error.response.get('Error', {}).get('Message', '')}".strip(": ")
            raise SendError(reason, permanent=code in self.PERMANENT)
        except BotoCoreError as error:
            raise SendError(str(error), permanent=False)
        return answer.get("MessageId")


BACKENDS = {backend.name: backend for backend in (OutboxBackend, SnsBackend)}


def backend():
    """The configured SMS backend (SMS_BACKEND); adding a provider is one class in BACKENDS."""
    name = current_app.config["SMS_BACKEND"]
    if name not in BACKENDS:
        raise RuntimeError(f"SMS_BACKEND={name!r} is not one of: {', '.join(BACKENDS)}")
    return BACKENDS[name]()
