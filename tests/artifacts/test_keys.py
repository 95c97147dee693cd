from __future__ import annotations

import pytest

from modelyard.artifacts.keys import join_key, safe_key
from modelyard.errors import InvalidInput


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("a/b.txt", "a/b.txt"),
        ("./a//b.txt", "a/b.txt"),
        ("model/manifest.json", "model/manifest.json"),
    ],
)
def test_safe_key_normalises(given: str, expected: str) -> None:
    assert safe_key(given) == expected


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("../x", "'..'"),
        ("a/../../x", "'..'"),
        ("/etc/passwd", "relative"),
        ("C:/windows", "relative"),
        ("s3://bucket/x", "relative"),
        ("a\\..\\x", "backslash"),
        ("a\x00b", "control"),
        ("", "empty"),
        ("./.", "names no file"),
    ],
)
def test_safe_key_refuses_escapes(bad: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        safe_key(bad)


def test_join_key_checks_both_parts() -> None:
    assert join_key("runs/1", "x.txt") == "runs/1/x.txt"
    with pytest.raises(InvalidInput):
        join_key("runs/1", "../2/x.txt")
