"""A local HTTP server speaking the part of Twilio's REST API that Knockout uses: create a message.

`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded, HTTP basic auth with the
account SID and auth token; 201 with the message's JSON (`sid` SM…), or Twilio's error JSON
(`code`, `message`, `more_info`, `status`). Failures are injected per number: `fail(to, status,
code, message, times)` answers the next `times` sends to that number with that error.
"""
import base64
import json
import secrets
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "local-twilio-token"


@dataclass
class Sent:
    """One message the server accepted."""

    sid: str
    to: str
    body: str
    sender: dict  # {"From": …} or {"MessagingServiceSid": …}


class TwilioServer:
    """Runs on 127.0.0.1 in a thread; `url` is what TWILIO_API_URL is set to."""

    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN):
        self.account_sid, self.auth_token = account_sid, auth_token
        self.sent: list[Sent] = []
        self.attempts: defaultdict[str, int] = defaultdict(int)  # number → POSTs for it
        self.auth_seen: list[tuple[str, str]] = []
        self.failures: defaultdict[str, deque] = defaultdict(deque)
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def fail(self, to: str, status: int, code: int, message: str, times: int = 1) -> None:
        """The next `times` sends to `to` get this Twilio error."""
        with self.lock:
            self.failures[to].extend([(status, code, message)] * times)

    def delivered(self, to: str) -> int:
        return sum(1 for message in self.sent if message.to == to)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _answer(self, path: str, authorization: str, form: dict) -> tuple[int, dict]:
        expected = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        user, _, password = _basic(authorization)
        with self.lock:
            self.auth_seen.append((user, password))
        if (user, password) != (self.account_sid, self.auth_token):
            return _error(401, 20003, "Authenticate")
        if path != expected:
            return _error(404, 20404, f"The requested resource {path} was not found")
        to, body = form.get("To", ""), form.get("Body", "")
        sender = {k: form[k] for k in ("From", "MessagingServiceSid") if k in form}
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not sender:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return _error(400, 21602, "Message body is required.")
        with self.lock:
            self.attempts[to] += 1
            if self.failures[to]:
                return _error(*self.failures[to].popleft())
            sid = "SM" + secrets.token_hex(16)
            self.sent.append(Sent(sid, to, body, sender))
        return 201, {"sid": sid, "account_sid": self.account_sid, "to": to, "body": body,
                     "from": sender.get("From"), "status": "queued", "num_segments": "1",
                     "messaging_service_sid": sender.get("MessagingServiceSid"),
                     "direction": "outbound-api", "api_version": "2010-04-01",
                     "uri": f"{expected[:-5]}/{sid}.json"}

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = {key: values[0] for key, values in parse_qs(raw).items()}
                status, payload = server._answer(self.path, self.headers.get("Authorization", ""),
                                                 form)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler


def _basic(header: str) -> tuple[str, str, str]:
    if not header.startswith("Basic "):
        return "", "", ""
    return base64.b64decode(header[6:]).decode().partition(":")


def _error(status: int, code: int, message: str) -> tuple[int, dict]:
    return status, {"code": code, "message": message, "status": status,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}"}
