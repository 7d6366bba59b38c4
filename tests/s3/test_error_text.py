"""Text of AWS XML answers: the XML entities and character references, nothing more."""

from __future__ import annotations

import pytest

from agent.aws.classify import xml_text, xml_unescape


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;", "a <b> & \"c\" 'd'"),
        ("&#233;t&#xE9; &#x1F600;", "\u00e9t\u00e9 \U0001f600"),
        ("&#0; &#xD800; &#x110000;", "\ufffd \ufffd \ufffd"),
        ("&nbsp; &amp;amp; & alone", "&nbsp; &amp; & alone"),
    ],
)
def test_xml_unescape(text: str, expected: str) -> None:
    assert xml_unescape(text) == expected


def test_xml_text_decodes_the_message() -> None:
    body = (
        b"<?xml version='1.0'?><Error><Code>AccessDenied</Code>"
        b"<Message>User: arn:aws:sts::1:assumed-role/R/x is not authorized &amp; denied"
        b"</Message></Error>"
    )
    assert xml_text(body, "Code") == "AccessDenied"
    assert xml_text(body, "Message") == (
        "User: arn:aws:sts::1:assumed-role/R/x is not authorized & denied"
    )
