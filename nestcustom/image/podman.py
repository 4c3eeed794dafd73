"""The only module that talks to podman, through its REST API (podman-py).

Two things podman-py does not do for us, done here:
- `images.build()` reads the whole build log before it returns; we stream
  `/build` ourselves so each step's lines reach the user as they happen;
- `images.push()` never reads the server's reply, so a failed push looks like
  success; we read the stream and fail on in-band errors.
The service itself (started for the run, stopped after it) is `service`'s job.
podman-py (and requests under it) is imported only when a method needs it:
a build with nothing to do never pays for it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nestcustom.errors import NestcustomError
from nestcustom.image.context import ContextFile, build_context
from nestcustom.image.events import (
    BuildEvent,
    BuildFailed,
    BuildResult,
    PodmanUnavailable,
    PushFailed,
    split_reference,
)
from nestcustom.image.stepwatch import StepWatch

if TYPE_CHECKING:
    from podman import PodmanClient

log = logging.getLogger("nestcustom.podman")

__all__ = [
    "BuildEvent",
    "BuildFailed",
    "BuildResult",
    "ContextFile",
    "Podman",
    "PodmanUnavailable",
    "PushFailed",
    "build_context",
    "split_reference",
]

# "STEP 2/5: RUN ..."; with builder stages "[2/3] STEP 1/4: FROM ..." (numbers per stage).
_STEP = re.compile(r"^(?:\[(\d+)/\d+\] )?STEP (\d+)/(\d+): (.*)$")
_IMAGE_ID = re.compile(r"^([0-9a-f]{64})$")
# Push failures worth a retry, and those that no retry can fix (they win when both
# appear: a TLS mismatch also says "pinging container registry"). Lower case: podman
# and the registries are not consistent about case.
_TRANSIENT = (
    "connection refused",
    "i/o timeout",
    "eof",
    "502 bad gateway",
    "503 service unavailable",
    "504 gateway",
    "toomanyrequests",
    "connection reset",
)
_PERMANENT = (
    "http response to https client",
    "x509",
    "certificate",
    "unauthorized",
    "authentication required",
    "denied",
    "no such host",
)


def _api_errors() -> tuple[type[BaseException], ...]:
    from podman.errors import APIError, PodmanError

    return (APIError, PodmanError, OSError)


@dataclass
class _Step:
    number: int = 0
    total: int = 0
    started: float = field(default_factory=time.monotonic)
    lines: list[str] = field(default_factory=list)
    cached: bool = False


class Podman:
    """A connection to podman's API."""

    def __init__(self, client: PodmanClient, service_pid: int | None = None) -> None:
        self.client = client
        # The API service, when this process started it (see `service`): its step
        # containers can then be stopped by pid.
        self.service_pid = service_pid
        self._builds: set[Any] = set()  # streaming build responses still open
        self._lock = threading.Lock()

    # -- build ---------------------------------------------------------------

    def build(
        self,
        context: bytes,
        *,
        labels: Mapping[str, str] | None = None,
        no_cache: bool = False,
        timestamp: int | None = None,
        step_timeout: float | None = None,
        secrets: Sequence[str] = (),
        on_event: Callable[[BuildEvent], None] = lambda event: None,
    ) -> BuildResult:
        """Build the context's Containerfile; no tag is set (tagging is for the caller).

        A RUN step still running after `step_timeout` seconds is killed (its
        container's processes, found by pid below our service) and the build fails
        saying so; without our own service, the stream is closed instead.

        `timestamp` (seconds since the epoch) becomes the image's and its new steps'
        created time and the time of every file in its new layers (not of times inside
        files, such as an rpm database's). Labels are better written into the
        Containerfile: podman adds these as one LABEL step each, in no fixed order.
        """
        params: dict[str, Any] = {
            "dockerfile": "Containerfile",
            "rm": True,
            "forcerm": True,  # intermediate containers go even when a step fails
            "layers": True,
            # podman 4.3's API defaults to the Docker format while its layer cache holds OCI
            # images (what the CLI builds): without this no step is ever taken from cache.
            "outputformat": "application/vnd.oci.image.manifest.v1+json",
            "nocache": no_cache,
        }
        if labels:
            params["labels"] = json.dumps(dict(sorted(labels.items())))
        if timestamp is not None:
            params["timestamp"] = timestamp
        if secrets:  # `id=ID,src=NAME`, NAME a file at the context's top (image/secrets.py)
            params["secrets"] = json.dumps(list(secrets))
        try:
            response = self.client.api.post(
                "/build",
                params=params,
                data=context,
                headers={"Content-type": "application/x-tar"},
                stream=True,
            )
        except _api_errors() as exc:
            raise PodmanUnavailable(f"podman did not accept the build: {exc}") from exc
        if response.status_code >= 400:
            raise BuildFailed(f"podman refused the build: {_api_message(response)}", None, None, ())
        step = _Step()
        seconds: list[float] = []
        cached: list[int] = []
        image_id = None
        # Steps are numbered through all stages, in order, as Rendering.steps lists them.
        stage, offset, stage_total = "1", 0, 0
        watch = StepWatch(response, step_timeout, self.service_pid)
        with self._streaming(response, self._builds), watch:
            for raw in watch.lines():
                if not raw:
                    continue
                message = json.loads(raw)
                if "error" in message:
                    raise watch.failure(step.number, step.total, step.lines) or _build_error(
                        str(message["error"]), step
                    )
                image_id = _aux_id(message) or image_id
                for line in str(message.get("stream", "")).splitlines():
                    if match := _STEP.match(line):
                        if step.number:
                            seconds.append(time.monotonic() - step.started)
                            if step.cached:
                                cached.append(step.number)
                        if (match[1] or "1") != stage:
                            stage, offset = match[1], offset + stage_total
                        stage_total = int(match[3])
                        step = _Step(offset + int(match[2]), offset + stage_total)
                        watch.started(match[4])
                        # FROM runs nothing and podman never says "Using cache" for it.
                        step.cached = match[4].startswith("FROM ")
                        on_event(BuildEvent(step.number, step.total, match[4], starts_step=True))
                        continue
                    if line.startswith("--> Using cache"):
                        step.cached = True
                    if id_match := _IMAGE_ID.match(line.strip()):
                        image_id = id_match[1]
                    step.lines.append(line)
                    del step.lines[:-200]  # keep the tail only: steps can be chatty
                    on_event(BuildEvent(step.number, step.total, line))
        if step.number:
            seconds.append(time.monotonic() - step.started)
            if step.cached:
                cached.append(step.number)
        if failed := watch.failure(step.number, step.total, step.lines):
            raise failed
        if image_id is None:
            raise _build_error("the build ended without an image", step)
        return BuildResult(image_id, tuple(seconds), tuple(cached))

    # -- images --------------------------------------------------------------

    def tag(self, image_id: str, reference: str) -> None:
        repository, tag = split_reference(reference)
        try:
            ok = self.client.images.get(image_id).tag(repository, tag)
        except _api_errors() as exc:
            raise NestcustomError(f"cannot tag {image_id[:12]} as {reference}: {exc}") from exc
        if not ok:
            raise NestcustomError(f"podman did not tag {image_id[:12]} as {reference}")

    def inspect(self, reference: str) -> dict[str, Any]:
        from podman.errors import ImageNotFound

        try:
            attrs: dict[str, Any] = self.client.images.get(reference).attrs
        except ImageNotFound as exc:
            raise NestcustomError(f"no image {reference} in podman's storage") from exc
        return attrs

    def exists(self, reference: str) -> bool:
        return bool(self.client.images.exists(reference))

    def remove(self, reference: str) -> None:
        from podman.errors import ImageNotFound

        with contextlib.suppress(ImageNotFound):
            self.client.images.remove(reference)

    def pull(self, reference: str, *, tls_verify: bool = True) -> None:
        """Bring `reference` into local storage (what a build's FROM would do)."""
        try:
            self.client.images.pull(reference, tls_verify=tls_verify)
        except _api_errors() as exc:
            raise NestcustomError(f"cannot pull {reference}: {exc}", _push_hint(str(exc))) from exc

    def load_stream(self, chunks: Iterable[bytes], name: str = "image") -> str:
        """Load a docker-archive or OCI archive tar, sent as it is produced; the image ID.

        Added for base images built from an ISO: the archive carries a config podman's
        build would not write as is (a HEALTHCHECK, no build-time noise), and streaming
        it spares writing a copy of the whole root to disk first.
        """
        try:
            response = self.client.api.post(
                "/images/load",
                data=iter(chunks),  # type: ignore[arg-type]  # requests streams any iterable
                headers={"Content-type": "application/x-tar"},
            )
        except _api_errors() as exc:
            raise NestcustomError(f"podman did not load {name}: {exc}") from exc
        if response.status_code >= 400:
            raise NestcustomError(f"podman did not load {name}: {_api_message(response)}")
        names = response.json().get("Names") or []
        for loaded in names:
            if match := _IMAGE_ID.match(str(loaded).removeprefix("sha256:")):
                return match[1]
        raise NestcustomError(f"podman loaded {name} but named no image: {names}")

    def layer_sizes(self, reference: str) -> list[int]:
        """Each layer's uncompressed size, lowest first, from the image's history (entries
        that made no layer have none); [] when podman cannot say."""
        try:
            history = self.client.images.get(reference).history()
        except _api_errors():
            return []
        return [int(h.get("Size") or 0) for h in reversed(history) if int(h.get("Size") or 0) > 0]

    def save_stream(self, image_id: str) -> Iterator[bytes]:
        """The image as a docker-archive tar, as podman sends it (rechunk reads its layers)."""
        try:
            yield from self.client.images.get(image_id).save(chunk_size=1 << 20)
        except _api_errors() as exc:
            raise NestcustomError(f"podman did not export {image_id[:12]}: {exc}") from exc

    # -- push ----------------------------------------------------------------

    def push(
        self,
        reference: str,
        *,
        tls_verify: bool = True,
        credentials: tuple[str, str] | None = None,
        attempts: int = 4,
        first_delay: float = 1.0,
        on_line: Callable[[str], None] = lambda line: None,
        destination: str | None = None,
    ) -> None:
        """Push `reference` to its registry (or to `destination`), retrying transient
        failures with backoff.

        The service does not read the client's auth files (REGISTRY_AUTH_FILE and the
        rest): `credentials` found by the caller travel in the X-Registry-Auth header.
        """
        delay = first_delay
        for attempt in range(1, attempts + 1):
            try:
                self._push_once(reference, tls_verify, credentials, on_line, destination)
                return
            except PushFailed as exc:
                if attempt == attempts or not is_transient(exc.message):
                    if attempt > 1:
                        exc.message += f" (after {attempt} attempts)"
                    raise
                on_line(f"push failed ({exc.message}); retrying in {delay:.0f} s")
                time.sleep(delay)
                delay *= 2

    def _push_once(
        self,
        reference: str,
        tls_verify: bool,
        credentials: tuple[str, str] | None,
        on_line: Callable[[str], None],
        destination: str | None = None,
    ) -> None:
        name = urllib.parse.quote(reference, safe="")
        params = {"destination": destination or reference, "tlsVerify": tls_verify, "quiet": False}
        headers = {}
        if credentials:
            auth = json.dumps({"username": credentials[0], "password": credentials[1]})
            headers["X-Registry-Auth"] = base64.urlsafe_b64encode(auth.encode()).decode()
        try:
            response = self.client.api.post(
                f"/images/{name}/push", params=params, headers=headers, stream=True
            )
        except _api_errors() as exc:
            raise PushFailed(f"cannot push {reference}: {exc}") from exc
        if response.status_code >= 400:
            raise PushFailed(
                f"cannot push {reference}: {_api_message(response)}", _push_hint(response.text)
            )
        with self._streaming(response, set()):
            for raw in response.iter_lines():
                if not raw:
                    continue
                message = json.loads(raw)
                if "error" in message:  # in-band: the HTTP status was already 200
                    text = str(message["error"])
                    raise PushFailed(f"cannot push {reference}: {text}", _push_hint(text))
                for line in str(message.get("stream", "")).splitlines():
                    on_line(line)

    # -- interruption ----------------------------------------------------------

    @contextlib.contextmanager
    def _streaming(self, response: Any, registry: set[Any]) -> Iterator[None]:
        with self._lock:
            registry.add(response)
        try:
            yield
        finally:
            with self._lock:
                registry.discard(response)
            response.close()

    def running_builds(self) -> int:
        with self._lock:
            return len(self._builds)

    def stop_builds(self, wait: float = 30.0, hurry: threading.Event | None = None) -> bool:
        """Stop every build of this connection; True once all their streams ended.

        The step each build runs is killed (by pid, below our own service): the step
        fails at once and buildah removes its working container itself. A build
        between steps (copying, writing a layer) reaches its next RUN, which is
        killed too, or ends. Closing the stream alone would not do: podman 4.3 runs
        the step to its end and then leaves the working container behind. Once
        `hurry` is set (a second Ctrl-C), the wait is cut to a second.
        """
        from nestcustom.image.processes import kill_step_processes

        deadline = time.monotonic() + wait
        while self.running_builds():
            if hurry is not None and hurry.is_set():  # asked again: a second at most
                deadline = min(deadline, time.monotonic() + 1.0)
                hurry = None
            if self.service_pid is None or time.monotonic() > deadline:
                return False
            kill_step_processes(self.service_pid)
            time.sleep(0.05)
        return True


def _aux_id(message: dict[str, Any]) -> str | None:
    aux = message.get("aux")
    if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
        return str(aux["ID"]).removeprefix("sha256:")
    return None


def _api_message(response: Any) -> str:
    try:
        body = response.json()
        return str(body.get("message") or body.get("cause") or body)
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"


def _build_error(text: str, step: _Step) -> BuildFailed:
    errors = [line.strip() for line in step.lines if line.strip().startswith("error:")]
    cause = errors[-1].removeprefix("error:").strip() if errors else text.strip()
    return BuildFailed(cause, None, step.number or None, tuple(step.lines[-20:]), step.total)


def is_transient(text: str) -> bool:
    """Whether a push failure may go away by itself (and is worth a retry)."""
    lowered = text.lower()
    if any(marker in lowered for marker in _PERMANENT):
        return False
    return any(marker in lowered for marker in _TRANSIENT)


def _push_hint(text: str) -> str | None:
    lowered = text.lower()
    if "unauthorized" in lowered or "authentication required" in lowered or "denied" in lowered:
        return "log in first (podman login REGISTRY), or point REGISTRY_AUTH_FILE at an auth file"
    if "http response to https client" in lowered:
        return (
            "the registry speaks plain http: for a local test registry pass --no-tls-verify "
            "(never for production)"
        )
    if "x509" in lowered or "certificate" in lowered:
        return "the registry's TLS certificate is not trusted here: add its CA to /etc/containers/certs.d/HOST/"
    if "pinging container registry" in lowered or "connection refused" in lowered:
        return "is the registry up, and is the name right?"
    return None
