"""The email providers: each backend sends one email to one address, or raises SendError (the same
contract as the SMS backends in quiz/sms.py). What the emails say and who gets them:
quiz/emails.py."""
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from flask import current_app

from .sms import SendError, aws_client

log = logging.getLogger(__name__)

QR_CID = "qr-code"  # the QR image's Content-ID: templates show it with <img src="cid:qr-code">


@dataclass(frozen=True)
class Email:
    """One email ready to leave: the plain text and the HTML of the same message, an unsubscribe
    link for the List-Unsubscribe header, and a QR code (PNG) the HTML shows inline."""

    to: str
    subject: str
    text: str
    html: str | None = None
    unsubscribe: str | None = None
    qr_png: bytes | None = None


def mime(email: Email, sender: str) -> EmailMessage:
    """The email as a MIME message: text, or text and HTML (with the QR code as a related part),
    and the QR code attached as a file too when there is no HTML to show it."""
    message = EmailMessage()
    message["From"], message["To"] = sender, email.to
    message["Subject"] = " ".join(email.subject.split())  # never a header line break
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].rstrip(">") or None)
    if email.unsubscribe:
        message["List-Unsubscribe"] = f"<{email.unsubscribe}>"
    message.set_content(email.text)
    if email.html:
        message.add_alternative(email.html, subtype="html")
        if email.qr_png:
            message.get_payload()[1].add_related(email.qr_png, "image", "png",
                                                 cid=f"<{QR_CID}>", filename="qr-code.png")
    elif email.qr_png:
        message.add_attachment(email.qr_png, maintype="image", subtype="png",
                               filename="qr-code.png")
    return message


class OutboxMail:
    """The embedded default: the email stays in the database (the console and
    /api/admin/outbox?channel=email list it) and in the log."""

    name = "outbox"
    external = False

    def send(self, email: Email) -> str | None:
        log.debug("Email to %s: %s", email.to, email.subject)
        return None

    def close(self) -> None:
        pass


class SmtpMail:
    """Any SMTP server: STARTTLS (587), SSL (465) or none (25), with a login when one is set. One
    connection per batch, opened again if the server drops it."""

    name = "smtp"
    external = True

    def __init__(self):
        config = current_app.config
        self.host, self.port = config["SMTP_HOST"], int(config["SMTP_PORT"])
        self.security, self.timeout = config["SMTP_SECURITY"], float(config["SMTP_TIMEOUT_SECONDS"])
        self.login = (config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
        self.sender = config["EMAIL_FROM"]
        self.context = ssl.create_default_context(cafile=config["SMTP_CA_FILE"] or None)
        self.connection: smtplib.SMTP | None = None

    def connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            connection = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                          context=self.context)
        else:
            connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.security == "starttls":
                connection.starttls(context=self.context)
            if self.login[0]:
                connection.login(*self.login)
        except BaseException:
            connection.close()
            raise
        return connection

    def send(self, email: Email) -> str | None:
        message = mime(email, self.sender)
        try:
            if self.connection is None:
                self.connection = self.connect()
            self.connection.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            self.drop()
            code, reason = next(iter(error.recipients.values()))
            raise SendError(f"{code}: {_text(reason)}", permanent=code >= 500)
        except (smtplib.SMTPSenderRefused, smtplib.SMTPAuthenticationError,
                smtplib.SMTPNotSupportedError) as error:
            # Our side's settings (the sender, the login), not this address: try again later.
            self.drop()
            raise SendError(f"{getattr(error, 'smtp_code', '')}: {_text(error)}".strip(": "),
                            permanent=False)
        except smtplib.SMTPResponseException as error:
            self.drop()
            raise SendError(f"{error.smtp_code}: {_text(error.smtp_error)}",
                            permanent=error.smtp_code >= 500)
        except (smtplib.SMTPException, OSError) as error:  # dropped, refused, timed out, TLS
            self.drop()
            raise SendError(f"{type(error).__name__}: {error}", permanent=False)
        return message["Message-ID"]

    def drop(self) -> None:
        """Forget the connection (after an error the server may have closed it)."""
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.close()
            except OSError:
                pass

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.quit()
            except (smtplib.SMTPException, OSError):
                pass
        self.drop()


class SesMail:
    """Amazon SES (API v2 `send_email`, the raw MIME message, so the QR code goes along)."""

    name = "ses"
    external = True
    # The address or the message, not our account or the moment: sending again cannot help.
    PERMANENT = {"MessageRejected", "BadRequestException", "InvalidParameterValue",
                 "AccountSuspendedException"}

    def __init__(self):
        config = current_app.config
        self.client = self.make_client(config)
        self.sender = config["EMAIL_FROM"]
        self.extra = ({"ConfigurationSetName": config["SES_CONFIGURATION_SET"]}
                      if config["SES_CONFIGURATION_SET"] else {})

    @staticmethod
    def make_client(config):
        return aws_client("sesv2", config["SES_ENDPOINT_URL"], config)

    def send(self, email: Email) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError
        raw = mime(email, self.sender).as_bytes()
        try:
            # The recipient is the raw message's To header (a Destination as well would name them
            # twice).
            answer = self.client.send_email(FromEmailAddress=self.sender,
                                            Content={"Raw": {"Data": raw}}, **self.extra)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            reason = f"{code}: {error.response.get('Error', {}).get('Message', '')}".strip(": ")
            raise SendError(reason, permanent=code in self.PERMANENT)
        except BotoCoreError as error:
            raise SendError(str(error), permanent=False)
        return answer.get("MessageId")

    def close(self) -> None:
        pass


def _text(reason) -> str:
    return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)


BACKENDS = {backend.name: backend for backend in (OutboxMail, SmtpMail, SesMail)}


def backend():
    """The configured email backend (EMAIL_BACKEND, checked at start by
    config_checks.check_email_config); adding a provider is one class in BACKENDS."""
    return BACKENDS[current_app.config["EMAIL_BACKEND"]]()
