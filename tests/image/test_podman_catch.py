"""What a failed push or build tells the user, from podman's own words: the hint for a
registry that wants a login or is not there, and the cause of a build that failed."""

from __future__ import annotations

import pytest

from nestcustom.image.podman import _build_error, _push_hint, _Step

LOGIN = "log in first (podman login REGISTRY), or point REGISTRY_AUTH_FILE at an auth file"


@pytest.mark.parametrize(
    "text",
    [
        # Distribution's answer without a login, as podman relays it
        'trying to reuse blob: initiating layer upload: StatusCode: 401, "UNAUTHORIZED"',
        # quay.io / docker.io to a user without push rights
        "denied: requested access to the resource is denied",
        "authentication required",
    ],
)
def test_a_push_refused_for_want_of_a_login_says_to_log_in(text: str) -> None:
    assert _push_hint(text) == LOGIN


def test_a_push_to_a_registry_nobody_answers_asks_whether_it_is_up() -> None:
    text = (
        "pinging container registry 127.0.0.1:9: dial tcp 127.0.0.1:9: connect: connection refused"
    )
    assert _push_hint(text) == "is the registry up, and is the name right?"


def test_a_build_failure_without_an_error_line_reports_podmans_text() -> None:
    step = _Step(3, 5, lines=["STEP 3/5: RUN false", "some output"])
    failed = _build_error('building at STEP "RUN false": exit status 1', step)
    assert failed.message == 'building at STEP "RUN false": exit status 1'
    assert failed.step == 3
    assert failed.output == ("STEP 3/5: RUN false", "some output")


def test_a_build_failure_reports_the_last_error_line_of_its_step() -> None:
    step = _Step(2, 4, lines=["error: first", "noise", "error: no space left on device"])
    assert _build_error("exit status 1", step).message == "no space left on device"
