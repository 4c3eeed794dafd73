"""JUnit XML stays well-formed whatever a check's output holds."""

from __future__ import annotations

from xml.dom import minidom
from xml.etree import ElementTree

from nestcustom.image.checks import CheckResult
from nestcustom.image.verify import VerifyReport, junit_xml, xml_safe

COLOURED = "\x1b[31mFAIL\x1b[0m: bad\x07 \x1b]0;title\x07byte \x00\x0b\x1f end\ttab"


def test_output_with_colours_and_control_characters_gives_well_formed_xml() -> None:
    report = VerifyReport(
        "img\x1b[1m",
        (
            CheckResult("command", "sh -c 'printf \x1b[31m'", "exit 0", False, COLOURED),
            CheckResult("command", "true", "exit 0", True),
        ),
    )
    text = junit_xml(report, "r")
    # Two real XML parsers (expat underneath both): a raw ESC or NUL would stop them.
    suite = ElementTree.fromstring(text)
    minidom.parseString(text.encode())
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert failure.get("message") == "FAIL: bad\\x07 byte \\x00\\x0b\\x1f end\ttab"
    assert failure.text == failure.get("message")
    assert suite.find("testcase").get("name") == "sh -c 'printf ' exit 0"  # type: ignore[union-attr]


def test_xml_safe_keeps_ordinary_text() -> None:
    assert xml_safe("Grüße, 日本, emoji 🙂\nline two") == "Grüße, 日本, emoji 🙂\nline two"
