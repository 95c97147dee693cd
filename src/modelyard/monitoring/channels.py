"""Alert channels: deliver one alert event to one destination.

An alert event is a JSON-able mapping: ``monitor``, ``alert_id`` (or ``alert``),
``event`` ("fired", "escalated", "resolved"), ``severity`` ("warn", "critical",
"ok"), ``summary``, ``evidence``, ``time`` (epoch ms) and ``links``; other keys
travel as they are. A channel is one method::

    >>> channel = channel_from_spec(
    ...     {"type": "webhook", "url": "https://hooks.example.com/x", "token_secret": "pager"},
    ...     services.secrets,
    ... )
    >>> channel.send(event)
    Delivery(channel='webhook https://hooks.example.com', status='sent', attempts=1, error='')

``send`` never raises for a delivery problem: the ``Delivery`` says ``failed`` and
why. Specs, stored as JSON with monitors (``check_channel_spec`` in
``monitoring/channelspecs.py`` validates them):

- ``{"type": "log", "level": "warning"}``: one JSON line per event on the logger
  ``modelyard.alerts``; without ``level``, WARNING for a fired warning, ERROR for
  a critical alert, INFO for a resolution.
- ``{"type": "webhook", "url", "headers", "token_secret", "retries", "backoff_s",
  "timeout_s"}``: POST the event as JSON; the token is read from the secret store
  at send time and sent as ``Authorization: Bearer``.
- ``{"type": "email", "host", "port", "from", "to", "username", "password_secret",
  "starttls", "timeout_s", "retries", "backoff_s"}``: a plain-text mail by SMTP
  (``monitoring/alertmail.py`` writes it).

When a failure may pass (no connection, a timeout, HTTP 5xx or 429, an SMTP 4xx
reply) both network channels make up to ``retries`` more attempts, waiting
``backoff_s`` and then twice as long each time (at most 30 s); other refusals fail
at once. Descriptions and error texts never hold a secret: a webhook is described
by its scheme and host only (its path may carry a token), and revealed values are
scrubbed from every error text.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from modelyard import __version__
from modelyard.errors import InvalidInput, ModelyardError
from modelyard.monitoring.alertmail import alert_id_of, alert_mail, event_json
from modelyard.monitoring.channelspecs import check_channel_spec


class SecretSource(Protocol):
    """Where a channel reads the secrets it names (a workspace's, for a monitor)."""

    def reveal(self, name: str) -> str: ...


__all__ = [
    "Channel",
    "Delivery",
    "EmailChannel",
    "InMemoryChannel",
    "LogChannel",
    "WebhookChannel",
    "channel_from_spec",
    "check_channel_spec",
]

ALERT_LOGGER = "modelyard.alerts"
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


class Channel(Protocol):
    """Delivers alert events to one destination."""

    def send(self, event: Mapping[str, Any]) -> Delivery: ...


def channel_from_spec(spec: Mapping[str, Any], secrets: SecretSource | None) -> Channel:
    """The channel a spec describes (checked first); ``secrets`` resolves ``*_secret`` fields.

    >>> channel_from_spec({"type": "log"}, None).send(event).status
    'sent'
    """
    checked = check_channel_spec(spec)
    kind = checked.pop("type")
    if kind == "log":
        return LogChannel(level=checked["level"])
    for field_name in ("token_secret", "password_secret"):
        if checked.get(field_name) and secrets is None:
            raise InvalidInput(
                f"{kind} channel: {field_name} '{checked[field_name]}' needs the secret store"
            )
    if kind == "webhook":
        return WebhookChannel(secrets=secrets, **checked)
    return EmailChannel(
        secrets=secrets, from_address=checked.pop("from"), to=tuple(checked.pop("to")), **checked
    )


# -- log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LogChannel:
    """One JSON line per event on the ``modelyard.alerts`` logger.

    ``level`` fixes the level; without it a fired warning is WARNING, a critical
    alert ERROR and a resolution INFO.
    """

    level: str | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger(ALERT_LOGGER))

    def send(self, event: Mapping[str, Any]) -> Delivery:
        self.logger.log(self._level_of(event), "%s", event_json(event))
        return Delivery(f"log {self.logger.name}", SENT, 1)

    def _level_of(self, event: Mapping[str, Any]) -> int:
        if self.level:
            return logging.getLevelNamesMapping()[self.level.upper()]
        if event.get("event") == "resolved":
            return logging.INFO
        return logging.ERROR if event.get("severity") == "critical" else logging.WARNING


# -- retries -------------------------------------------------------------------------


class _Retry(Exception):
    """A failure that may pass: try again after the backoff."""


class _GiveUp(Exception):
    """A refusal that will not pass by trying again."""


def _deliver(
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
        except _GiveUp as exc:
            return Delivery(description, FAILED, attempts, str(exc))
        except _Retry as exc:
            if attempts > retries:
                return Delivery(description, FAILED, attempts, f"{exc} (after {attempts} attempts)")
        time.sleep(min(backoff_s * 2 ** (attempts - 1), MAX_WAIT_S))


def _reveal(
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


def _scrubbed(delivery: Delivery, *values: str | None) -> Delivery:
    error = delivery.error
    for value in values:
        if value:
            error = error.replace(value, "***")
    if error == delivery.error:
        return delivery
    return Delivery(delivery.channel, delivery.status, delivery.attempts, error)


# -- webhook -------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookChannel:
    """POST the event as JSON to ``url``; a bearer token comes from the secret store."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    token_secret: str | None = None
    retries: int = 3
    backoff_s: float = 0.5
    timeout_s: float = 5.0
    secrets: SecretSource | None = field(default=None, repr=False)

    @property
    def description(self) -> str:
        parsed = httpx.URL(self.url)
        port = f":{parsed.port}" if parsed.port else ""
        return f"webhook {parsed.scheme}://{parsed.host}{port}"

    def send(self, event: Mapping[str, Any]) -> Delivery:
        token, refused = _reveal(self.secrets, self.token_secret, self.description)
        if refused:
            return refused
        headers = {
            **self.headers,
            "Content-Type": "application/json",
            "User-Agent": f"modelyard/{__version__}",
            "X-Modelyard-Alert": f"{alert_id_of(event)}/{event.get('event', '')}",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = event_json(event).encode()
        with httpx.Client(timeout=self.timeout_s, follow_redirects=False) as client:
            delivery = _deliver(
                self.description,
                lambda: self._post(client, body, headers, token),
                retries=self.retries,
                backoff_s=self.backoff_s,
            )
        return _scrubbed(delivery, token)

    def _post(
        self, client: httpx.Client, body: bytes, headers: dict[str, str], token: str | None
    ) -> str:
        try:
            response = client.post(self.url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise _Retry(f"no answer within {self.timeout_s:g} s") from None
        except httpx.TransportError as exc:
            raise _Retry(f"cannot connect: {exc or type(exc).__name__}") from None
        if response.is_success:
            return ""
        answer = response.text.replace(token, "***") if token else response.text  # before cutting
        problem = f"HTTP {response.status_code}: {_first_line(answer)}".rstrip(": ")
        if response.status_code >= 500 or response.status_code == 429:
            raise _Retry(problem)
        if response.is_redirect:
            problem += " (redirects are not followed)"
        raise _GiveUp(problem)


def _first_line(text: str, limit: int = 200) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0][:limit] if stripped else ""


# -- email ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EmailChannel:
    """A plain-text mail by SMTP: the summary, the evidence as lines, and the event as JSON.

    ``password_secret`` names the secret holding ``username``'s password; without
    ``starttls`` it crosses the network in clear, so use that only on a trusted link.
    """

    host: str
    port: int
    from_address: str
    to: tuple[str, ...]
    username: str | None = None
    password_secret: str | None = None
    starttls: bool = False
    timeout_s: float = 10.0
    retries: int = 3
    backoff_s: float = 0.5
    secrets: SecretSource | None = field(default=None, repr=False)

    @property
    def description(self) -> str:
        return f"email to {', '.join(self.to)} via {self.host}:{self.port}"

    def send(self, event: Mapping[str, Any]) -> Delivery:
        password, refused = _reveal(self.secrets, self.password_secret, self.description)
        if refused:
            return refused
        message = alert_mail(event, sender=self.from_address, recipients=self.to)
        delivery = _deliver(
            self.description,
            lambda: self._submit(message, password),
            retries=self.retries,
            backoff_s=self.backoff_s,
        )
        return _scrubbed(delivery, password)

    def _submit(self, message: EmailMessage, password: str | None) -> str:
        """Send ``message``; a note naming the recipients the server refused, if any."""
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, password or "")
                refused = smtp.send_message(message, self.from_address, list(self.to))
        except smtplib.SMTPRecipientsRefused as exc:
            raise _smtp_refusal(exc.recipients) from None
        except smtplib.SMTPResponseException as exc:
            problem = f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}"
            raise (_Retry if 400 <= exc.smtp_code < 500 else _GiveUp)(problem) from None
        except smtplib.SMTPServerDisconnected as exc:
            raise _Retry(f"the SMTP server disconnected: {exc}") from None
        except smtplib.SMTPException as exc:
            raise _GiveUp(f"SMTP: {exc}") from None
        except ssl.SSLError as exc:
            raise _GiveUp(f"TLS with {self.host}:{self.port} failed: {exc}") from None
        except (TimeoutError, OSError) as exc:
            reason = f"no answer within {self.timeout_s:g} s" if _timed_out(exc) else str(exc)
            raise _Retry(f"cannot reach {self.host}:{self.port}: {reason}") from None
        return f"refused {_refusals(refused)}" if refused else ""


def _refusals(recipients: Mapping[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{rcpt}: {code} {_text(reply)}" for rcpt, (code, reply) in recipients.items())


def _smtp_refusal(recipients: Mapping[str, tuple[int, bytes]]) -> Exception:
    problem = f"SMTP refused every recipient: {_refusals(recipients)}"
    temporary = all(400 <= code < 500 for code, _ in recipients.values())
    return _Retry(problem) if temporary else _GiveUp(problem)


def _text(reply: bytes | str) -> str:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or "timed out" in str(exc)


# -- in memory -----------------------------------------------------------------------


class InMemoryChannel:
    """Keeps every event it is sent, in order: for tests and the embedded mode.

    >>> channel = InMemoryChannel()
    >>> channel.send({"event": "fired"}).sent, len(channel.events)
    (True, 1)
    """

    def __init__(self, fail_with: str | None = None) -> None:
        self.fail_with = fail_with
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def send(self, event: Mapping[str, Any]) -> Delivery:
        with self._lock:
            self.events.append(json.loads(event_json(event)))
        if self.fail_with:
            return Delivery("memory", FAILED, 1, self.fail_with)
        return Delivery("memory", SENT, 1)
