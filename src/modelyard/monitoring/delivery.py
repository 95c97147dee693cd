"""How an alert reaches its destination: attempts and retries, secrets read at send time
and scrubbed from every error, and the two transports (an HTTP POST and SMTP).

Every channel type in ``monitoring/channels.py`` sends through these. A failure that
may pass (no connection, a timeout, HTTP 5xx or 429, an SMTP 4xx reply) is tried
again up to ``retries`` more times, waiting ``backoff_s`` and then twice as long each
time (at most 30 s); other refusals fail at once.

>>> post_json("webhook https://hooks.example.com", url, body, {}, secret=None,
...           retries=3, backoff_s=0.5, timeout_s=5.0)
Delivery(channel='webhook https://hooks.example.com', status='sent', attempts=1, error='')
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import httpx

from modelyard.errors import ModelyardError

SENT, FAILED = "sent", "failed"
MAX_WAIT_S = 30.0  # the longest single wait between attempts, however many retries


@dataclass(frozen=True)
class Delivery:
    """What became of one event on one channel (``channel`` never holds a secret)."""

    channel: str
    status: str
    attempts: int
    error: str = ""

    @property
    def sent(self) -> bool:
        return self.status == SENT


class SecretSource(Protocol):
    """Where a channel reads the secrets it names (a workspace's, for a monitor)."""

    def reveal(self, name: str) -> str: ...


class RetryLater(Exception):
    """A failure that may pass: try again after the backoff."""


class GiveUp(Exception):
    """A refusal that will not pass by trying again."""


def deliver(
    description: str, attempt: Callable[[], str], *, retries: int, backoff_s: float
) -> Delivery:
    """Run ``attempt`` until it returns (a note for a sent delivery, usually empty),
    gives up, or ``retries`` retries are spent."""
    attempts = 0
    while True:
        attempts += 1
        try:
            note = attempt()
            return Delivery(description, SENT, attempts, note)
        except GiveUp as exc:
            return Delivery(description, FAILED, attempts, str(exc))
        except RetryLater as exc:
            if attempts > retries:
                return Delivery(description, FAILED, attempts, f"{exc} (after {attempts} attempts)")
        time.sleep(min(backoff_s * 2 ** (attempts - 1), MAX_WAIT_S))


def reveal(
    secrets: SecretSource | None, name: str | None, description: str
) -> tuple[str | None, Delivery | None]:
    """The secret's value, or a failed delivery naming why it could not be read."""
    if not name:
        return None, None
    if secrets is None:
        return None, Delivery(description, FAILED, 0, f"no secret store to read '{name}'")
    try:
        return secrets.reveal(name), None
    except ModelyardError as exc:  # the message names the secret, never its value
        return None, Delivery(description, FAILED, 0, str(exc))


def scrubbed(delivery: Delivery, *values: str | None) -> Delivery:
    """``delivery`` with every revealed value in its error replaced by ``***``."""
    error = delivery.error
    for value in values:
        if value:
            error = error.replace(value, "***")
    if error == delivery.error:
        return delivery
    return Delivery(delivery.channel, delivery.status, delivery.attempts, error)


# -- HTTP ------------------------------------------------------------------------------


def post_json(
    description: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    secret: str | None,
    retries: int,
    backoff_s: float,
    timeout_s: float,
) -> Delivery:
    """POST ``body`` (JSON) to ``url``, redirects not followed; ``secret`` (a token, or a
    URL that is one) never shows in the error, and httpx's log lines show the URL's
    scheme and host only (a webhook's path may carry its token)."""
    headers = {**headers, "Content-Type": "application/json"}
    _hide_paths.install()
    _hide_paths.local.active = True
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False) as client:
            delivery = deliver(
                description,
                lambda: _post(client, url, body, headers, secret, timeout_s),
                retries=retries,
                backoff_s=backoff_s,
            )
    finally:
        _hide_paths.local.active = False
    return scrubbed(delivery, secret)


class _HidePaths(logging.Filter):
    """On a thread posting an alert, httpx's "HTTP Request: POST <url>" lines lose the
    URL's path and query."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()
        self._lock = threading.Lock()

    def install(self) -> None:
        with self._lock:
            logger = logging.getLogger("httpx")
            if self not in logger.filters:
                logger.addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(self.local, "active", False) and isinstance(record.args, tuple):
            record.args = tuple(_host_only(arg) for arg in record.args)
        return True


def _host_only(value: object) -> object:
    if isinstance(value, httpx.URL):
        port = f":{value.port}" if value.port else ""
        return f"{value.scheme}://{value.host}{port}/..."
    return value


_hide_paths = _HidePaths()


def _post(
    client: httpx.Client,
    url: str,
    body: bytes,
    headers: dict[str, str],
    secret: str | None,
    timeout_s: float,
) -> str:
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        raise RetryLater(f"no answer within {timeout_s:g} s") from None
    except httpx.TransportError as exc:
        raise RetryLater(f"cannot connect: {exc or type(exc).__name__}") from None
    if response.is_success:
        return ""
    answer = response.text.replace(secret, "***") if secret else response.text  # before cutting
    problem = f"HTTP {response.status_code}: {_first_line(answer)}".rstrip(": ")
    if response.status_code >= 500 or response.status_code == 429:
        raise RetryLater(problem)
    if response.is_redirect:
        problem += " (redirects are not followed)"
    raise GiveUp(problem)


def _first_line(text: str, limit: int = 200) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0][:limit] if stripped else ""


# -- SMTP ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpServer:
    """Where and how a mail is submitted; ``username`` logs in with the revealed password."""

    host: str
    port: int
    username: str | None
    starttls: bool
    timeout_s: float


def submit_mail(
    server: SmtpServer,
    message: EmailMessage,
    sender: str,
    recipients: list[str],
    password: str | None,
) -> str:
    """Send ``message``; a note naming the recipients the server refused, if any."""
    try:
        with smtplib.SMTP(server.host, server.port, timeout=server.timeout_s) as smtp:
            if server.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if server.username:
                smtp.login(server.username, password or "")
            refused = smtp.send_message(message, sender, recipients)
    except smtplib.SMTPRecipientsRefused as exc:
        raise _smtp_refusal(exc.recipients) from None
    except smtplib.SMTPResponseException as exc:
        problem = f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}"
        raise (RetryLater if 400 <= exc.smtp_code < 500 else GiveUp)(problem) from None
    except smtplib.SMTPServerDisconnected as exc:
        raise RetryLater(f"the SMTP server disconnected: {exc}") from None
    except smtplib.SMTPException as exc:
        raise GiveUp(f"SMTP: {exc}") from None
    except ssl.SSLError as exc:
        raise GiveUp(f"TLS with {server.host}:{server.port} failed: {exc}") from None
    except (TimeoutError, OSError) as exc:
        reason = f"no answer within {server.timeout_s:g} s" if _timed_out(exc) else str(exc)
        raise RetryLater(f"cannot reach {server.host}:{server.port}: {reason}") from None
    return f"refused {_refusals(refused)}" if refused else ""


def _refusals(recipients: Mapping[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{rcpt}: {code} {_text(reply)}" for rcpt, (code, reply) in recipients.items())


def _smtp_refusal(recipients: Mapping[str, tuple[int, bytes]]) -> Exception:
    problem = f"SMTP refused every recipient: {_refusals(recipients)}"
    temporary = all(400 <= code < 500 for code, _ in recipients.values())
    return RetryLater(problem) if temporary else GiveUp(problem)


def _text(reply: bytes | str) -> str:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or "timed out" in str(exc)
