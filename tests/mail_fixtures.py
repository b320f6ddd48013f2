"""A real SMTP server for the email tests: aiosmtpd on loopback, STARTTLS with a certificate made
for 127.0.0.1 (the client checks it against SMTP_CA_FILE) and a login; it keeps what it accepted.
Addresses starting "bounce" are refused for good (550), "busy" for now (451)."""
import datetime
import ipaddress
import ssl
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from quiz.stack import free_port

SMTP_USER, SMTP_PASSWORD = "quiz", "s3cret"
SENDER = "Knockout <quiz@example.com>"


def make_certificate(directory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(
            "127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


@dataclass
class Mailbox:
    """What the SMTP server accepted: (recipients, parsed message) per email."""

    host: str
    port: int
    ca_file: str
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    def to(self, address: str) -> list[EmailMessage]:
        return [message for recipients, message in self.received if address in recipients]

    def settings(self) -> dict:
        """The app settings (and worker environment) that send through this server."""
        return {"EMAIL_BACKEND": "smtp", "SMTP_HOST": self.host, "SMTP_PORT": str(self.port),
                "SMTP_SECURITY": "starttls", "SMTP_CA_FILE": self.ca_file,
                "SMTP_USERNAME": SMTP_USER, "SMTP_PASSWORD": SMTP_PASSWORD, "EMAIL_FROM": SENDER}


class Handler:
    def __init__(self, mailbox: Mailbox):
        self.mailbox = mailbox

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce"):
            return "550 5.1.1 No such user here"
        if address.startswith("busy"):
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.original_content or envelope.content,
                                     policy=policy.default)
        self.mailbox.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def _login(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=(auth_data.login, auth_data.password)
                      == (SMTP_USER.encode(), SMTP_PASSWORD.encode()), handled=False)


@pytest.fixture(scope="session")
def smtp_certificate(tmp_path_factory):
    return make_certificate(tmp_path_factory.mktemp("smtp"))


@pytest.fixture
def smtp_server(smtp_certificate):
    """A fresh SMTP server (STARTTLS required before the login) for one test."""
    cert, key = smtp_certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox("127.0.0.1", free_port(), cert)
    controller = Controller(Handler(mailbox), hostname="127.0.0.1", port=mailbox.port,
                            tls_context=context, require_starttls=True,
                            authenticator=_login, auth_required=True, auth_require_tls=True)
    controller.start()
    yield mailbox
    controller.stop()


@pytest.fixture
def smtp_ssl_server(smtp_certificate):
    """The same server speaking TLS from the first byte (SMTP_SECURITY=ssl, port 465's way); no
    login (aiosmtpd offers AUTH only after STARTTLS)."""
    cert, key = smtp_certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox("127.0.0.1", free_port(), cert)
    controller = Controller(Handler(mailbox), hostname="127.0.0.1", port=mailbox.port,
                            ssl_context=context)
    controller.start()
    yield mailbox
    controller.stop()


@pytest.fixture
def smtp(app, smtp_server):
    """The app sending email through the test SMTP server."""
    app.config.update(smtp_server.settings(), SMTP_PORT=smtp_server.port)
    return smtp_server
