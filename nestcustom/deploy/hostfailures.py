"""How a host's run stops short: the operator's stop, a failed step, a busy host, a host
that did not come back or came back as another host (deploy/hostrun.py raises them, the
rollout and rollback report them)."""

from __future__ import annotations

from nestcustom.errors import NestcustomError


class Stop(Exception):
    """The operator asked to stop: the host stays as its journal says."""


class HostFailed(NestcustomError):
    """A host's step failed; `failure` says what kind of failure (report.FAILURES) when the
    step's own kind (STEP_FAILURE) would not say it right."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        failure: str | None = None,
        health: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, hint)
        self.failure = failure
        self.health = health


# The kind of failure of a step, unless the error says otherwise.
STEP_FAILURE = {
    "preflight": "preflight",
    "rebase": "rebase",
    "reboot": "reboot",
    "wait": "not-back",
    "verify": "wrong-image",
    "trust": "untrusted",
}


class HostBusy(NestcustomError):
    """Another rollout holds the host; nothing was changed on it."""


class NotBack(HostFailed):
    """The host did not answer after its reboot: no rollback can be sent to it."""


class KeyChanged(HostFailed):
    """The host answered after its reboot with another host key: nothing more is sent to it
    (it is presumably running the target, but that cannot be verified)."""
