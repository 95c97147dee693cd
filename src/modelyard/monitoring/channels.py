"""Alert channels: the one registry of channel types, each delivering an event to one place.

A channel type is one class (``ChannelType``): its ``type`` (what a spec's
``"type"`` says), the fields its spec takes, which of them name secrets, how a
spec is checked (``check``: defaults filled in, errors naming the field), how a
channel is built from a checked spec, and ``send``. ``CHANNEL_TYPES`` holds them;
``check_channel_spec``, ``channel_from_spec`` and ``secret_names`` read it, so a new
channel type is a new class here and its entry in ``CHANNEL_TYPES``.

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
why. Specs are stored as JSON with monitors:

- ``{"type": "log", "level": "warning"}``: one JSON line per event on the logger
  ``modelyard.alerts``; without ``level``, WARNING for a fired warning, ERROR for
  a critical alert, INFO for a resolution.
- ``{"type": "webhook", "url", "headers", "token_secret", "retries", "backoff_s",
  "timeout_s"}``: POST the event as JSON; the token is read from the secret store
  at send time and sent as ``Authorization: Bearer``.
- ``{"type": "email", "host", "port", "from", "to", "username", "password_secret",
  "starttls", "timeout_s", "retries", "backoff_s"}``: a plain-text mail by SMTP
  (``monitoring/alertmail.py`` writes it).
- ``{"type": "slack", "url_secret", "retries", "backoff_s", "timeout_s"}``: a
  message to a Slack-style incoming webhook, ``{"text": subject, "blocks": [...]}``;
  the webhook's URL carries its token, so the whole URL is a secret.

Network channels retry what may pass (``monitoring/delivery.py``). Descriptions
and error texts never hold a secret: a webhook is described by its scheme and host
only (its path may carry a token), and revealed values are scrubbed from every
error text. Tokens and passwords never sit in a spec (stored in clear with its
monitor): a spec names a secret, and an ``Authorization`` header or credentials in
a URL are refused.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import httpx

from modelyard import __version__
from modelyard.errors import InvalidInput
from modelyard.monitoring.alertmail import (
    alert_id_of,
    alert_mail,
    alert_subject,
    event_json,
    evidence_lines,
)
from modelyard.monitoring.channelfields import ChannelFields
from modelyard.monitoring.delivery import (
    FAILED,
    SENT,
    Delivery,
    SecretSource,
    SmtpServer,
    deliver,
    post_json,
    reveal,
    scrubbed,
    submit_mail,
)

__all__ = [
    "CHANNEL_TYPES",
    "Channel",
    "ChannelType",
    "Delivery",
    "EmailChannel",
    "InMemoryChannel",
    "LogChannel",
    "SecretSource",
    "SlackChannel",
    "WebhookChannel",
    "channel_from_spec",
    "check_channel_spec",
    "secret_names",
]

ALERT_LOGGER = "modelyard.alerts"


class Channel(Protocol):
    """Delivers alert events to one destination."""

    def send(self, event: Mapping[str, Any]) -> Delivery: ...


class ChannelType:
    """A kind of channel: its spec's fields, their check, and building a channel."""

    type: ClassVar[str] = ""
    spec_fields: ClassVar[tuple[str, ...]] = ()  # besides "type"
    secret_fields: ClassVar[tuple[str, ...]] = ()  # fields that name a secret

    @classmethod
    def check(cls, fields: ChannelFields) -> dict[str, Any]:
        """The spec's values with defaults filled in, or ``InvalidInput`` naming the field."""
        raise NotImplementedError

    @classmethod
    def build(cls, spec: dict[str, Any], secrets: SecretSource | None) -> Channel:
        """The channel a checked spec (without its ``type``) describes."""
        raise NotImplementedError


def check_channel_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The spec with defaults filled in, or ``InvalidInput`` naming the bad field.

    >>> check_channel_spec({"type": "webhook", "url": "https://hooks.example.com/x"})["retries"]
    3
    """
    if not isinstance(spec, Mapping):
        raise InvalidInput("a channel spec must be an object with a 'type'")
    kind = spec.get("type")
    channel_type = CHANNEL_TYPES.get(kind) if isinstance(kind, str) else None
    if channel_type is None:
        known = ", ".join(sorted(CHANNEL_TYPES))
        raise InvalidInput(f"channel type: expected one of {known} (got {kind!r})")
    allowed = {"type", *channel_type.spec_fields}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise InvalidInput(
            f"{kind} channel: unknown field '{unknown[0]}' "
            f"(known: {', '.join(sorted(allowed))}; keep tokens and passwords in secrets)"
        )
    return {"type": channel_type.type, **channel_type.check(ChannelFields(channel_type.type, spec))}


def channel_from_spec(spec: Mapping[str, Any], secrets: SecretSource | None) -> Channel:
    """The channel a spec describes (checked first); ``secrets`` resolves ``*_secret`` fields.

    >>> channel_from_spec({"type": "log"}, None).send(event).status
    'sent'
    """
    checked = check_channel_spec(spec)
    channel_type = CHANNEL_TYPES[checked.pop("type")]
    for name in channel_type.secret_fields:
        if checked.get(name) and secrets is None:
            raise InvalidInput(
                f"{channel_type.type} channel: {name} '{checked[name]}' needs the secret store"
            )
    return channel_type.build(checked, secrets)


def secret_names(spec: Mapping[str, Any]) -> list[str]:
    """The secrets a channel spec names (checked first)."""
    checked = check_channel_spec(spec)
    fields = CHANNEL_TYPES[checked["type"]].secret_fields
    return [checked[name] for name in fields if checked.get(name)]


# -- log ---------------------------------------------------------------------------

_LEVELS = ("debug", "info", "warning", "error", "critical")


@dataclass(frozen=True)
class LogChannel(ChannelType):
    """One JSON line per event on the ``modelyard.alerts`` logger.

    ``level`` fixes the level; without it a fired warning is WARNING, a critical
    alert ERROR and a resolution INFO.
    """

    type = "log"
    spec_fields = ("level",)

    level: str | None = None
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger(ALERT_LOGGER))

    @classmethod
    def check(cls, fields: ChannelFields) -> dict[str, Any]:
        level = fields.text("level")
        if level is not None and level.lower() not in _LEVELS:
            raise fields.fail("level", f"expected one of {', '.join(_LEVELS)} (got {level!r})")
        return {"level": level.lower() if level else None}

    @classmethod
    def build(cls, spec: dict[str, Any], secrets: SecretSource | None) -> Channel:
        return cls(level=spec["level"])

    def send(self, event: Mapping[str, Any]) -> Delivery:
        self.logger.log(self._level_of(event), "%s", event_json(event))
        return Delivery(f"log {self.logger.name}", SENT, 1)

    def _level_of(self, event: Mapping[str, Any]) -> int:
        if self.level:
            return logging.getLevelNamesMapping()[self.level.upper()]
        if event.get("event") == "resolved":
            return logging.INFO
        return logging.ERROR if event.get("severity") == "critical" else logging.WARNING


# -- webhook -------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookChannel(ChannelType):
    """POST the event as JSON to ``url``; a bearer token comes from the secret store."""

    type = "webhook"
    spec_fields = ("url", "headers", "token_secret", "retries", "backoff_s", "timeout_s")
    secret_fields = ("token_secret",)

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    token_secret: str | None = None
    retries: int = 3
    backoff_s: float = 0.5
    timeout_s: float = 5.0
    secrets: SecretSource | None = field(default=None, repr=False)

    @classmethod
    def check(cls, fields: ChannelFields) -> dict[str, Any]:
        return {
            "url": fields.url("url"),
            "headers": fields.headers("headers"),
            "token_secret": fields.secret_name("token_secret"),
            **fields.retry_policy(5.0),
        }

    @classmethod
    def build(cls, spec: dict[str, Any], secrets: SecretSource | None) -> Channel:
        return cls(secrets=secrets, **spec)

    @property
    def description(self) -> str:
        parsed = httpx.URL(self.url)
        port = f":{parsed.port}" if parsed.port else ""
        return f"webhook {parsed.scheme}://{parsed.host}{port}"

    def send(self, event: Mapping[str, Any]) -> Delivery:
        token, refused = reveal(self.secrets, self.token_secret, self.description)
        if refused:
            return refused
        headers = {
            **self.headers,
            "User-Agent": f"modelyard/{__version__}",
            "X-Modelyard-Alert": f"{alert_id_of(event)}/{event.get('event', '')}",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return post_json(
            self.description,
            self.url,
            event_json(event).encode(),
            headers,
            secret=token,
            retries=self.retries,
            backoff_s=self.backoff_s,
            timeout_s=self.timeout_s,
        )


# -- email ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EmailChannel(ChannelType):
    """A plain-text mail by SMTP: the summary, the evidence as lines, and the event as JSON.

    ``password_secret`` names the secret holding ``username``'s password; without
    ``starttls`` it crosses the network in clear, so use that only on a trusted link.
    """

    type = "email"
    spec_fields = (
        "host",
        "port",
        "from",
        "to",
        "username",
        "password_secret",
        "starttls",
        "timeout_s",
        "retries",
        "backoff_s",
    )
    secret_fields = ("password_secret",)

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

    @classmethod
    def check(cls, fields: ChannelFields) -> dict[str, Any]:
        username = fields.text("username")
        password_secret = fields.secret_name("password_secret")
        if bool(username) != bool(password_secret):
            raise fields.fail(
                "username" if password_secret else "password_secret",
                "give username and password_secret together",
            )
        return {
            "host": fields.text("host", required=True),
            "port": fields.integer("port", 25, 1, 65535),
            "from": fields.address("from"),
            "to": fields.addresses("to"),
            "username": username,
            "password_secret": password_secret,
            "starttls": fields.flag("starttls", False),
            **fields.retry_policy(10.0),
        }

    @classmethod
    def build(cls, spec: dict[str, Any], secrets: SecretSource | None) -> Channel:
        values = dict(spec)
        sender, recipients = values.pop("from"), tuple(values.pop("to"))
        return cls(secrets=secrets, from_address=sender, to=recipients, **values)

    @property
    def description(self) -> str:
        return f"email to {', '.join(self.to)} via {self.host}:{self.port}"

    def send(self, event: Mapping[str, Any]) -> Delivery:
        password, refused = reveal(self.secrets, self.password_secret, self.description)
        if refused:
            return refused
        message = alert_mail(event, sender=self.from_address, recipients=self.to)
        server = SmtpServer(self.host, self.port, self.username, self.starttls, self.timeout_s)
        delivery = deliver(
            self.description,
            lambda: submit_mail(server, message, self.from_address, list(self.to), password),
            retries=self.retries,
            backoff_s=self.backoff_s,
        )
        return scrubbed(delivery, password)


# -- slack ---------------------------------------------------------------------------

_SLACK_TEXT = 3000  # the longest text of a section block
_SLACK_HEADER = 150  # the longest header


@dataclass(frozen=True)
class SlackChannel(ChannelType):
    """A message to a Slack-style incoming webhook: ``text`` (the alert's subject line,
    shown in notifications) and ``blocks`` (a header, the summary, the evidence, the
    alert id, time and links).

    An incoming webhook's URL is its credential, so the spec names the secret holding
    it (``url_secret``) and the URL shows in no description or error.
    """

    type = "slack"
    spec_fields = ("url_secret", "retries", "backoff_s", "timeout_s")
    secret_fields = ("url_secret",)

    url_secret: str
    retries: int = 3
    backoff_s: float = 0.5
    timeout_s: float = 5.0
    secrets: SecretSource | None = field(default=None, repr=False)

    @classmethod
    def check(cls, fields: ChannelFields) -> dict[str, Any]:
        return {
            "url_secret": fields.secret_name("url_secret", required=True),
            **fields.retry_policy(5.0),
        }

    @classmethod
    def build(cls, spec: dict[str, Any], secrets: SecretSource | None) -> Channel:
        return cls(secrets=secrets, **spec)

    @property
    def description(self) -> str:
        return f"slack webhook in secret '{self.url_secret}'"

    def send(self, event: Mapping[str, Any]) -> Delivery:
        revealed, refused = reveal(self.secrets, self.url_secret, self.description)
        if refused:
            return refused
        url = revealed or ""
        if not _is_http_url(url):
            problem = f"secret '{self.url_secret}' does not hold an http:// or https:// URL"
            return Delivery(self.description, FAILED, 0, problem)
        headers = {"User-Agent": f"modelyard/{__version__}"}
        return post_json(
            self.description,
            url,
            json.dumps(slack_message(event), ensure_ascii=False).encode(),
            headers,
            secret=url,
            retries=self.retries,
            backoff_s=self.backoff_s,
            timeout_s=self.timeout_s,
        )


def _is_http_url(url: str) -> bool:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.host)


def slack_message(event: Mapping[str, Any]) -> dict[str, Any]:
    """``{"text", "blocks"}`` for an alert event, text escaped as Slack's mrkdwn needs."""
    subject = alert_subject(event)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(subject.removeprefix("[modelyard] "), _SLACK_HEADER)},
        {"type": "section", "text": _mrkdwn(_escape(str(event.get("summary") or "alert")))},
    ]
    evidence = evidence_lines(event.get("evidence"))
    if evidence:
        lines = "\n".join(f"• {_escape(line)}" for line in evidence)
        blocks.append({"type": "section", "text": _mrkdwn(f"*Evidence*\n{lines}")})
    context = [f"alert `{_escape(alert_id_of(event) or '-')}`", _when(event.get("time"))]
    links = event.get("links")
    if isinstance(links, Mapping):
        context += [
            f"<{url}|{_escape(str(name))}>"
            for name, url in links.items()
            if isinstance(url, str) and _is_http_url(url) and not set("<>| ") & set(url)
        ]
    blocks.append({"type": "context", "elements": [_mrkdwn(" · ".join(context))]})
    return {"text": _escape(subject), "blocks": blocks}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str, limit: int) -> dict[str, Any]:
    cut = text if len(text) <= limit else text[: limit - 1] + "…"
    return {"type": "plain_text", "text": cut}


def _mrkdwn(text: str) -> dict[str, Any]:
    cut = text if len(text) <= _SLACK_TEXT else text[: _SLACK_TEXT - 1] + "…"
    return {"type": "mrkdwn", "text": cut}


def _when(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        moment = dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return "time unknown"


# -- the registry ----------------------------------------------------------------------

CHANNEL_TYPES: dict[str, type[ChannelType]] = {
    channel.type: channel for channel in (LogChannel, WebhookChannel, EmailChannel, SlackChannel)
}


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
