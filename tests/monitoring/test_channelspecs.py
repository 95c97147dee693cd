"""Channel specs: defaults filled in, and every bad field named without leaking a value."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.errors import InvalidInput
from modelyard.monitoring.channels import check_channel_spec

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
        ({}, "channel type: expected one of email, log, webhook (got None)"),
        ({"type": "sms"}, "channel type: expected one of email, log, webhook (got 'sms')"),
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
