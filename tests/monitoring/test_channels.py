"""Alert channels: specs checked with every bad field named, and delivery against real
servers on 127.0.0.1 (an HTTP receiver and an SMTP server).

Tokens and passwords come from the encrypted secret store (SQLite, key file in the
test's home), and never show up in a delivery, a description or an error.
"""

from __future__ import annotations

import email
import email.policy
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from modelyard.bootstrap import Services
from modelyard.errors import InvalidInput
from modelyard.monitoring.channels import (
    ALERT_LOGGER,
    CHANNEL_TYPES,
    InMemoryChannel,
    LogChannel,
    channel_from_spec,
    check_channel_spec,
    secret_names,
)
from tests.conftest import free_port

TOKEN = "hook-token-5e1d9a7c3b"
PASSWORD = "smtp-pass-8f2b6d4e0a"
EVENT: dict[str, Any] = {
    "monitor": "churn-monitor",
    "alert_id": "a1b2c3d4",
    "event": "fired",
    "severity": "critical",
    "summary": "drift in 3 columns",
    "evidence": {
        "age": {"psi": 0.3141, "threshold": 0.2},
        "income": {"psi": 0.41, "threshold": 0.2},
        "tenure": {"psi": 0.25, "threshold": 0.2},
    },
    "time": 1_795_000_000_000,
    "links": {"monitor": "http://127.0.0.1:8700/monitors/churn-monitor"},
}


# -- specs ------------------------------------------------------------------------------

WEBHOOK = {"type": "webhook", "url": "https://hooks.example.com/services/x"}
EMAIL = {"type": "email", "host": "smtp.example.com", "from": "a@example.com", "to": "b@x.org"}


def test_defaults_are_filled_in() -> None:
    assert check_channel_spec({"type": "log"}) == {"type": "log", "level": None}
    assert check_channel_spec(WEBHOOK) == {
        **WEBHOOK,
        "headers": {},
        "token_secret": None,
        "retries": 3,
        "backoff_s": 0.5,
        "timeout_s": 5.0,
    }
    assert check_channel_spec(EMAIL) == {
        **EMAIL,
        "to": ["b@x.org"],
        "port": 25,
        "username": None,
        "password_secret": None,
        "starttls": False,
        "retries": 3,
        "backoff_s": 0.5,
        "timeout_s": 10.0,
    }
    full = {**EMAIL, "to": ["b@x.org", "c@x.org"], "username": "u", "password_secret": "pw"}
    assert check_channel_spec({**full, "port": 587, "starttls": True})["to"] == [
        "b@x.org",
        "c@x.org",
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ([], "a channel spec must be an object with a 'type'"),
        ({}, "channel type: expected one of email, log, slack, webhook (got None)"),
        ({"type": "sms"}, "channel type: expected one of email, log, slack, webhook (got 'sms')"),
        ({"type": "slack"}, "slack channel url_secret: expected non-empty text"),
        ({"type": "slack", "url_secret": "a b"}, "slack channel url_secret: invalid secret name"),
        (
            {"type": "slack", "url": "https://hooks.example.com/services/T0/B0/x"},
            "slack channel: unknown field 'url' (known: backoff_s, retries, timeout_s, type, url_",
        ),
        ({"type": "slack", "url_secret": "s", "retries": 11}, "slack channel retries: expected 0"),
        ({"type": "log", "level": "loud"}, "log channel level: expected one of debug, info"),
        ({**WEBHOOK, "token": "abc"}, "webhook channel: unknown field 'token' (known: "),
        ({"type": "webhook"}, "webhook channel url: expected non-empty text"),
        ({**WEBHOOK, "url": "ftp://x/y"}, "webhook channel url: expected an http:// or https://"),
        ({**WEBHOOK, "url": "https://"}, "webhook channel url: "),
        (
            {**WEBHOOK, "url": "https://user:pw@hooks.example.com/x"},
            "webhook channel url: credentials in the URL are stored in clear: use token_secret",
        ),
        (
            {**WEBHOOK, "headers": {"Authorization": "Bearer abc"}},
            "webhook channel headers: keep the token in a secret and name it in token_secret",
        ),
        (
            {**WEBHOOK, "headers": {"X-A": "1\r\nX-B: 2"}},
            "webhook channel headers: header 'X-A' needs a one-line text",
        ),
        (
            {**WEBHOOK, "headers": {"bad name": "1"}},
            "webhook channel headers: invalid header name 'bad name'",
        ),
        ({**WEBHOOK, "headers": ["x"]}, "webhook channel headers: expected an object"),
        ({**WEBHOOK, "token_secret": "a/b"}, "webhook channel token_secret: invalid secret name"),
        ({**WEBHOOK, "retries": 11}, "webhook channel retries: expected 0 to 10 (got 11)"),
        ({**WEBHOOK, "retries": 1.5}, "webhook channel retries: expected a whole number"),
        ({**WEBHOOK, "retries": True}, "webhook channel retries: expected a whole number"),
        ({**WEBHOOK, "backoff_s": -1}, "webhook channel backoff_s: expected 0 to 60 (got -1)"),
        ({**WEBHOOK, "timeout_s": "5"}, "webhook channel timeout_s: expected a number (got str)"),
        ({**WEBHOOK, "timeout_s": 0}, "webhook channel timeout_s: expected 0.1 to 120 (got 0)"),
        ({**EMAIL, "host": ""}, "email channel host: expected non-empty text"),
        ({**EMAIL, "port": 0}, "email channel port: expected 1 to 65535 (got 0)"),
        ({**EMAIL, "from": "nobody"}, "email channel from: not an email address: 'nobody'"),
        ({**EMAIL, "from": "a@x.org\nBcc: c@x.org"}, "email channel from: must be one line"),
        ({**EMAIL, "to": []}, "email channel to: expected an address or a non-empty list"),
        ({**EMAIL, "to": ["ok@x.org", "a b@x"]}, "email channel to: not an email address"),
        ({**EMAIL, "username": "u"}, "email channel password_secret: give username and"),
        ({**EMAIL, "password_secret": "pw"}, "email channel username: give username and"),
        ({**EMAIL, "starttls": "yes"}, "email channel starttls: expected true or false"),
        ({**EMAIL, "password": "hunter2"}, "email channel: unknown field 'password'"),
    ],
)
def test_bad_fields_are_named(spec: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_channel_spec(spec)
    assert str(raised.value).startswith(message), str(raised.value)
    assert "hunter2" not in str(raised.value) and "Bearer abc" not in str(raised.value)


def test_every_channel_type_lists_its_fields_and_secrets() -> None:
    for name, channel_type in CHANNEL_TYPES.items():
        assert channel_type.type == name
        assert "type" not in channel_type.spec_fields
        assert set(channel_type.secret_fields) <= set(channel_type.spec_fields), name
        assert all(f.endswith("_secret") for f in channel_type.secret_fields), name


def test_secret_names_are_read_from_each_types_secret_fields() -> None:
    assert secret_names({"type": "log"}) == []
    assert secret_names(WEBHOOK) == []
    assert secret_names({**WEBHOOK, "token_secret": "pager"}) == ["pager"]
    full = {**EMAIL, "username": "u", "password_secret": "smtp"}
    assert secret_names(full) == ["smtp"]
    assert secret_names({"type": "slack", "url_secret": "ops-slack"}) == ["ops-slack"]
    with pytest.raises(InvalidInput, match="webhook channel token_secret: invalid secret name"):
        secret_names({**WEBHOOK, "token_secret": "a/b"})


# -- a recording HTTP receiver -------------------------------------------------------


@dataclass
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Scripted answers (status codes, then 200s) and every request it got."""

    url: str
    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    delay_s: float = 0.0
    echo_authorization: bool = False


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.received.append(
                Received(time.monotonic(), self.path, dict(self.headers.items()), body)
            )
            status = receiver.answers.pop(0) if receiver.answers else 200
            time.sleep(receiver.delay_s)
            text = "ok" if status < 400 else f"refused ({status})"
            if receiver.echo_authorization:  # a careless receiver quoting the header back
                text = f"bad credentials: {self.headers.get('Authorization')}"
            payload = text.encode()
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up waiting
                pass

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T0/B0/path-secret"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


def webhook(receiver_url: str, services: Services | None = None, **fields: Any) -> Any:
    spec = {"type": "webhook", "url": receiver_url, "backoff_s": 0.05, **fields}
    return channel_from_spec(spec, services.secrets if services else None)


# -- webhook ----------------------------------------------------------------------------


def test_webhook_posts_the_event_with_the_token_from_the_secret_store(
    receiver: Receiver, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    services.secrets.set("pager-token", TOKEN)
    channel = webhook(
        receiver.url, services, token_secret="pager-token", headers={"X-Team": "risk"}
    )
    delivery = channel.send(EVENT)
    assert (delivery.status, delivery.attempts, delivery.error) == ("sent", 1, "")
    (request,) = receiver.received
    assert json.loads(request.body) == EVENT
    assert request.path == "/hooks/T0/B0/path-secret"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Team"] == "risk"
    assert request.headers["X-Modelyard-Alert"] == "a1b2c3d4/fired"
    port = receiver.url.split(":")[2].split("/")[0]
    assert delivery.channel == f"webhook http://127.0.0.1:{port}"  # no path: it may be a token
    assert TOKEN not in repr(channel) and "path-secret" not in delivery.channel
    assert TOKEN not in caplog.text  # httpx and httpcore log at DEBUG without header values
    assert "path-secret" not in caplog.text  # httpx's request line shows the host only
    assert f'POST http://127.0.0.1:{port}/... "HTTP/1.0 200 OK"' in caplog.text


def test_webhook_retries_5xx_with_exponential_backoff(receiver: Receiver) -> None:
    receiver.answers = [500, 503]
    delivery = webhook(receiver.url, retries=3, backoff_s=0.1).send(EVENT)
    assert (delivery.status, delivery.attempts) == ("sent", 3)
    times = [r.at for r in receiver.received]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.1 and times[2] - times[1] >= 0.2  # 0.1 s, then doubled
    assert times[2] - times[0] < 2


def test_webhook_retries_429_and_gives_up_after_its_retries(receiver: Receiver) -> None:
    receiver.answers = [429, 500, 502]
    delivery = webhook(receiver.url, retries=2).send(EVENT)
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert delivery.error == "HTTP 502: refused (502) (after 3 attempts)"
    assert len(receiver.received) == 3


def test_webhook_does_not_retry_a_4xx(receiver: Receiver) -> None:
    receiver.answers = [400]
    delivery = webhook(receiver.url, retries=3).send(EVENT)
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.error == "HTTP 400: refused (400)"
    assert len(receiver.received) == 1


def test_webhook_errors_never_hold_the_token(receiver: Receiver, services: Services) -> None:
    services.secrets.set("pager-token", TOKEN)
    receiver.answers, receiver.echo_authorization = [401], True
    delivery = webhook(receiver.url, services, token_secret="pager-token").send(EVENT)
    assert delivery.status == "failed" and delivery.attempts == 1
    assert delivery.error == "HTTP 401: bad credentials: Bearer ***"
    assert TOKEN not in repr(delivery)


def test_webhook_to_a_server_that_is_down_fails_in_bounded_time() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    started = time.monotonic()
    delivery = webhook(url, retries=2, timeout_s=1).send(EVENT)
    assert time.monotonic() - started < 5
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert delivery.error.startswith("cannot connect: ")
    assert delivery.error.endswith("(after 3 attempts)")


def test_webhook_timeouts_are_retried_and_named(receiver: Receiver) -> None:
    receiver.delay_s = 1.0
    started = time.monotonic()
    delivery = webhook(receiver.url, retries=1, timeout_s=0.2).send(EVENT)
    assert time.monotonic() - started < 3
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert delivery.error == "no answer within 0.2 s (after 2 attempts)"


def test_webhook_with_a_missing_secret_fails_without_sending(
    receiver: Receiver, services: Services
) -> None:
    delivery = webhook(receiver.url, services, token_secret="never-set").send(EVENT)
    assert (delivery.status, delivery.attempts) == ("failed", 0)
    assert delivery.error == "secret 'never-set' does not exist"
    assert receiver.received == []


def test_a_channel_reads_only_its_own_workspaces_secrets(
    receiver: Receiver, services: Services
) -> None:
    services.workspaces.create("fraud")
    services.secrets.set("fraud-token", TOKEN, workspace="fraud")
    spec = {"type": "webhook", "url": receiver.url, "token_secret": "fraud-token"}
    elsewhere = channel_from_spec(spec, services.secrets.scoped("default")).send(EVENT)
    assert (elsewhere.status, elsewhere.attempts) == ("failed", 0)
    assert elsewhere.error == "secret 'fraud-token' does not exist"
    assert receiver.received == []  # the other team's token went nowhere
    own = channel_from_spec(spec, services.secrets.scoped("fraud")).send(EVENT)
    assert own.status == "sent"
    assert receiver.received[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_secret_field_without_a_secret_store_is_refused() -> None:
    spec = {"type": "webhook", "url": "http://127.0.0.1/x", "token_secret": "t"}
    with pytest.raises(InvalidInput, match="token_secret 't' needs the secret store"):
        channel_from_spec(spec, None)


# -- slack -------------------------------------------------------------------------------


def slack(services: Services | None, **fields: Any) -> Any:
    spec = {"type": "slack", "url_secret": "ops-slack", "backoff_s": 0.05, **fields}
    return channel_from_spec(spec, services.secrets if services else None)


def test_slack_posts_text_and_blocks_to_the_url_from_the_secret_store(
    receiver: Receiver, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    services.secrets.set("ops-slack", receiver.url)
    channel = slack(services)
    delivery = channel.send(EVENT)
    assert (delivery.status, delivery.attempts, delivery.error) == ("sent", 1, "")
    (request,) = receiver.received
    assert request.path == "/hooks/T0/B0/path-secret"
    assert request.headers["Content-Type"] == "application/json"
    assert "Authorization" not in request.headers
    message = json.loads(request.body)
    assert message["text"] == "[modelyard] CRITICAL churn-monitor: drift in 3 columns (fired)"
    assert [block["type"] for block in message["blocks"]] == [
        "header",
        "section",
        "section",
        "context",
    ]
    header, summary, evidence, context = message["blocks"]
    assert header["text"] == {
        "type": "plain_text",
        "text": "CRITICAL churn-monitor: drift in 3 columns (fired)",
    }
    assert summary["text"] == {"type": "mrkdwn", "text": "drift in 3 columns"}
    assert evidence["text"]["text"].splitlines() == [
        "*Evidence*",
        "• age: psi=0.3141, threshold=0.2",
        "• income: psi=0.41, threshold=0.2",
        "• tenure: psi=0.25, threshold=0.2",
    ]
    (line,) = context["elements"]
    assert line["text"] == (
        "alert `a1b2c3d4` · 2026-11-18 11:06:40 UTC"
        " · <http://127.0.0.1:8700/monitors/churn-monitor|monitor>"
    )
    assert delivery.channel == "slack webhook in secret 'ops-slack'"
    assert "path-secret" not in repr(channel) and "path-secret" not in caplog.text


def test_slack_text_is_escaped_and_odd_links_are_left_out(
    receiver: Receiver, services: Services
) -> None:
    services.secrets.set("ops-slack", receiver.url)
    event = {
        **EVENT,
        "summary": "p < 0.01 & shift > 2 <!channel>",
        "evidence": None,
        "links": {
            "mail": "mailto:x@example.test",
            "odd": "http://127.0.0.1/a|b",
            "ok": "https://h.test/m",
        },
    }
    assert slack(services).send(event).sent
    message = json.loads(receiver.received[0].body)
    assert message["text"].startswith("[modelyard] CRITICAL churn-monitor: p &lt; 0.01 &amp;")
    assert [block["type"] for block in message["blocks"]] == ["header", "section", "context"]
    summary = message["blocks"][1]["text"]["text"]
    assert summary == "p &lt; 0.01 &amp; shift &gt; 2 &lt;!channel&gt;"
    assert message["blocks"][2]["elements"][0]["text"].endswith("UTC · <https://h.test/m|ok>")


def test_slack_retries_5xx_and_never_names_the_url(receiver: Receiver, services: Services) -> None:
    services.secrets.set("ops-slack", receiver.url)
    receiver.answers = [503, 404]
    delivery = slack(services, retries=3).send(EVENT)
    assert (delivery.status, delivery.attempts) == ("failed", 2)  # a 404 is not retried
    assert delivery.error == "HTTP 404: refused (404)"
    down = f"http://127.0.0.1:{free_port()}/hooks/T1/B1/down-secret"
    services.secrets.set("ops-slack", down)
    failed = slack(services, retries=1, timeout_s=1).send(EVENT)
    assert (failed.status, failed.attempts) == ("failed", 2)
    assert failed.error.startswith("cannot connect: ") and "down-secret" not in repr(failed)


def test_slack_without_a_usable_url_fails_without_sending(
    receiver: Receiver, services: Services
) -> None:
    missing = slack(services).send(EVENT)
    assert (missing.status, missing.attempts) == ("failed", 0)
    assert missing.error == "secret 'ops-slack' does not exist"
    services.secrets.set("ops-slack", "not-a-url-but-a-token-7f3a")
    wrong = slack(services).send(EVENT)
    assert (wrong.status, wrong.attempts) == ("failed", 0)
    assert wrong.error == "secret 'ops-slack' does not hold an http:// or https:// URL"
    assert "7f3a" not in repr(wrong) and receiver.received == []
    with pytest.raises(InvalidInput, match="url_secret 'ops-slack' needs the secret store"):
        slack(None)


# -- email -------------------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler: keeps accepted mail; ``replies`` scripts DATA answers first."""

    def __init__(self) -> None:
        self.mail: list[tuple[Envelope, bool]] = []
        self.replies: list[str] = []
        self.unknown: dict[str, str] = {}  # recipient -> RCPT answer

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.unknown:
            return self.unknown[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.replies:
            return self.replies.pop(0)
        self.mail.append((envelope, bool(session.authenticated)))
        return "250 Message accepted for delivery"


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"alerts",
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # not handled: the server answers 535


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    handler = Inbox()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticator,
        auth_require_tls=False,  # AUTH is offered in clear on loopback; each mail says
    )  # whether its session authenticated
    controller.start()
    yield handler, port
    controller.stop()


def mailer(port: int, services: Services, **fields: Any) -> Any:
    spec = {
        "type": "email",
        "host": "127.0.0.1",
        "port": port,
        "from": "modelyard@example.test",
        "to": ["oncall@example.test", "risk@example.test"],
        "username": "alerts",
        "password_secret": "smtp-password",
        "timeout_s": 2,
        "backoff_s": 0.05,
        **fields,
    }
    return channel_from_spec(spec, services.secrets)


def test_email_is_delivered_with_auth_from_the_secret_store(
    inbox: tuple[Inbox, int], services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    handler, port = inbox
    services.secrets.set("smtp-password", PASSWORD)
    delivery = mailer(port, services).send(EVENT)
    assert (delivery.status, delivery.attempts, delivery.error) == ("sent", 1, "")
    assert delivery.channel == (
        f"email to oncall@example.test, risk@example.test via 127.0.0.1:{port}"
    )
    ((envelope, authenticated),) = handler.mail
    assert authenticated
    assert envelope.mail_from == "modelyard@example.test"
    assert envelope.rcpt_tos == ["oncall@example.test", "risk@example.test"]
    content = envelope.content or b""
    raw = content if isinstance(content, bytes) else content.encode()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "[modelyard] CRITICAL churn-monitor: drift in 3 columns (fired)"
    assert message["To"] == "oncall@example.test, risk@example.test"
    body = message.get_content().replace("\r\n", "\n")
    assert "CRITICAL alert on monitor churn-monitor: fired\ndrift in 3 columns\n" in body
    assert "  age: psi=0.3141, threshold=0.2\n  income: psi=0.41, threshold=0.2\n" in body
    assert "Time:  2026-11-18 11:06:40 UTC" in body and "Alert: a1b2c3d4" in body
    assert "  monitor: http://127.0.0.1:8700/monitors/churn-monitor" in body
    assert json.loads(body.split("The event as JSON:\n", 1)[1]) == EVENT
    assert PASSWORD not in body and PASSWORD not in caplog.text


def test_a_wrong_password_fails_at_once_and_is_not_quoted(
    inbox: tuple[Inbox, int], services: Services
) -> None:
    handler, port = inbox
    services.secrets.set("smtp-password", PASSWORD + "-old")
    delivery = mailer(port, services, retries=3).send(EVENT)
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.error.startswith("SMTP 535")
    assert PASSWORD not in delivery.error and handler.mail == []


def test_a_temporary_smtp_failure_is_retried(inbox: tuple[Inbox, int], services: Services) -> None:
    handler, port = inbox
    services.secrets.set("smtp-password", PASSWORD)
    handler.replies = ["451 4.3.0 Try again later"]
    delivery = mailer(port, services).send(EVENT)
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert len(handler.mail) == 1


def test_a_permanent_smtp_refusal_is_not_retried(
    inbox: tuple[Inbox, int], services: Services
) -> None:
    handler, port = inbox
    services.secrets.set("smtp-password", PASSWORD)
    handler.replies = ["554 5.7.1 Message rejected"]
    delivery = mailer(port, services, retries=3).send(EVENT)
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.error == "SMTP 554: 5.7.1 Message rejected"


def test_refused_recipients_are_named(inbox: tuple[Inbox, int], services: Services) -> None:
    handler, port = inbox
    services.secrets.set("smtp-password", PASSWORD)
    handler.unknown = {"risk@example.test": "550 5.1.1 No such user"}
    partly = mailer(port, services).send(EVENT)
    assert (partly.status, partly.attempts) == ("sent", 1)
    assert partly.error == "refused risk@example.test: 550 5.1.1 No such user"
    assert handler.mail[0][0].rcpt_tos == ["oncall@example.test"]
    handler.unknown["oncall@example.test"] = "450 4.2.1 Mailbox busy"
    nobody = mailer(port, services, retries=3).send(EVENT)
    assert (nobody.status, nobody.attempts) == ("failed", 1)  # one permanent refusal: no retry
    assert nobody.error.startswith("SMTP refused every recipient: ")
    assert "oncall@example.test: 450 4.2.1 Mailbox busy" in nobody.error


def test_email_to_a_server_that_is_down_fails_in_bounded_time(services: Services) -> None:
    services.secrets.set("smtp-password", PASSWORD)
    port = free_port()
    started = time.monotonic()
    delivery = mailer(port, services, retries=2).send(EVENT)
    assert time.monotonic() - started < 5
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert delivery.error.startswith(f"cannot reach 127.0.0.1:{port}: ")
    assert delivery.error.endswith("(after 3 attempts)")


def test_email_with_a_missing_password_secret_fails_without_sending(
    inbox: tuple[Inbox, int], services: Services
) -> None:
    handler, port = inbox
    delivery = mailer(port, services).send(EVENT)
    assert (delivery.status, delivery.attempts) == ("failed", 0)
    assert delivery.error == "secret 'smtp-password' does not exist"
    assert handler.mail == []


# -- log and memory ------------------------------------------------------------------------


def test_log_channel_writes_one_json_line_at_the_severity_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=ALERT_LOGGER)
    channel = channel_from_spec({"type": "log"}, None)
    events = [
        {**EVENT, "severity": "warn"},
        EVENT,
        {**EVENT, "event": "resolved", "severity": "ok", "evidence": {"psi": float("nan")}},
    ]
    deliveries = [channel.send(event) for event in events]
    assert [d.status for d in deliveries] == ["sent"] * 3
    assert deliveries[0].channel == "log modelyard.alerts"
    records = [r for r in caplog.records if r.name == ALERT_LOGGER]
    assert [r.levelno for r in records] == [logging.WARNING, logging.ERROR, logging.INFO]
    lines = [r.getMessage() for r in records]
    assert all("\n" not in line for line in lines)
    assert json.loads(lines[1]) == EVENT
    assert json.loads(lines[2])["evidence"] == {"psi": None}  # strict JSON


def test_log_channel_level_is_fixed_by_the_spec(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=ALERT_LOGGER)
    channel = channel_from_spec({"type": "log", "level": "ERROR"}, None)
    assert isinstance(channel, LogChannel)
    channel.send({**EVENT, "event": "resolved"})
    assert [r.levelno for r in caplog.records if r.name == ALERT_LOGGER] == [logging.ERROR]


def test_in_memory_channel_keeps_the_events() -> None:
    channel = InMemoryChannel()
    assert channel.send(EVENT).sent and channel.events == [EVENT]
    failing = InMemoryChannel(fail_with="down for the test")
    delivery = failing.send(EVENT)
    assert (delivery.status, delivery.error) == ("failed", "down for the test")
