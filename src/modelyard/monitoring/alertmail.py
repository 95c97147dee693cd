"""How an alert event reads: as one JSON line, and as a plain-text mail for people.

>>> alert_subject({"severity": "critical", "monitor": "churn-monitor",
...                "summary": "drift in 3 columns", "event": "fired"})
'[modelyard] CRITICAL churn-monitor: drift in 3 columns (fired)'
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from modelyard.jsonable import plain

SUBJECT_LIMIT = 200
_SEVERITY_WORDS = {"warn": "WARNING"}


def alert_id_of(event: Mapping[str, Any]) -> str:
    """The alert's id, sent as ``alert_id`` (or ``alert``, as monitors send it)."""
    return str(event.get("alert_id") or event.get("alert") or "")


def event_json(event: Mapping[str, Any], *, indent: int | None = None) -> str:
    """Strict JSON (a NaN is null, infinities are "inf"/"-inf"); one line unless ``indent``."""
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(
        _finite(plain(dict(event))), indent=indent, separators=separators, ensure_ascii=False
    )


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def alert_subject(event: Mapping[str, Any]) -> str:
    """``[modelyard] SEVERITY monitor: summary (event)`` on one line, at most 200 characters."""
    severity = str(event.get("severity", "")).lower()
    word = _SEVERITY_WORDS.get(severity, severity.upper() or "ALERT")
    summary = _one_line(event.get("summary") or "alert")
    subject = f"[modelyard] {word} {_one_line(event.get('monitor', '?'))}: {summary}"
    suffix = f" ({_one_line(event.get('event', 'fired'))})"
    if len(subject) + len(suffix) > SUBJECT_LIMIT:
        subject = subject[: SUBJECT_LIMIT - len(suffix) - 1] + "…"
    return subject + suffix


def alert_text(event: Mapping[str, Any]) -> str:
    """The mail body: what happened, the evidence as lines, where to look, then the JSON."""
    severity = str(event.get("severity", "")).lower()
    word = _SEVERITY_WORDS.get(severity, severity.upper() or "ALERT")
    lines = [
        f"{word} alert on monitor {event.get('monitor', '?')}: {event.get('event', 'fired')}",
        str(event.get("summary") or ""),
        "",
    ]
    evidence = evidence_lines(event.get("evidence"))
    if evidence:
        lines += ["Evidence:", *(f"  {line}" for line in evidence), ""]
    lines.append(f"Alert: {alert_id_of(event) or '-'}")
    lines.append(f"Time:  {_moment(event.get('time'))}")
    links = evidence_lines(event.get("links"))
    if links:
        lines += ["Links:", *(f"  {line}" for line in links)]
    lines += ["", "The event as JSON:", event_json(event, indent=2), ""]
    return "\n".join(lines)


def alert_mail(event: Mapping[str, Any], *, sender: str, recipients: Iterable[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = alert_subject(event)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain="modelyard.alerts")
    message.set_content(alert_text(event))
    return message


def evidence_lines(evidence: Any) -> list[str]:
    """Evidence of any shape as readable lines: a mapping gives ``key: value`` lines,
    a list one line per item, a nested mapping ``k=v, k=v``."""
    if evidence is None or evidence == "" or evidence == {} or evidence == []:
        return []
    if isinstance(evidence, Mapping):
        return [f"{key}: {_inline(value)}" for key, value in evidence.items()]
    if isinstance(evidence, list | tuple):
        return [_inline(item) for item in evidence]
    return [_inline(evidence)]


def _inline(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={_inline(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_inline(item) for item in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return _one_line(value)


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())


def _moment(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        moment = dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return _one_line(value) if value else "-"
