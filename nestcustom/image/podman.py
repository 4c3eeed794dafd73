"""The only module that talks to podman, through its REST API (podman-py).

Two things podman-py does not do for us, done here:
- `images.build()` reads the whole build log before it returns; we stream
  `/build` ourselves so each step's lines reach the user as they happen;
- `images.push()` never reads the server's reply, so a failed push looks like
  success; we read the stream and fail on in-band errors.
Where no API socket answers, a `podman system service` is started for the run
and stopped after it.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import tarfile
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podman import PodmanClient
from podman.errors import APIError, ImageNotFound, PodmanError

from nestcustom import proc
from nestcustom.errors import NestcustomError

log = logging.getLogger("nestcustom.podman")

_STEP = re.compile(r"^STEP (\d+)/(\d+): (.*)$")
_IMAGE_ID = re.compile(r"^([0-9a-f]{64})$")
_TRANSIENT = (
    "pinging container registry",
    "connection refused",
    "i/o timeout",
    "EOF",
    "502 Bad Gateway",
    "503 Service Unavailable",
    "504 Gateway",
    "TOOMANYREQUESTS",
    "connection reset",
)


class PodmanUnavailable(NestcustomError):
    """No podman API could be reached or started."""


class BuildFailed(NestcustomError):
    """A build step failed; carries the step and the lines it printed."""

    def __init__(
        self,
        message: str,
        hint: str | None,
        step: int | None,
        output: tuple[str, ...],
        total: int = 0,
    ):
        super().__init__(message, hint)
        self.step = step
        self.total = total
        self.output = output


class PushFailed(NestcustomError):
    """The registry did not take the image."""


@dataclass(frozen=True)
class BuildEvent:
    """Something a build printed: a new step starting, or a line of its output."""

    step: int  # 1-based; 0 before the first step
    total: int
    text: str
    starts_step: bool = False


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    step_seconds: tuple[float, ...]
    cached_steps: tuple[int, ...]  # steps podman took from its layer cache


@dataclass(frozen=True)
class ContextFile:
    """A file of the build context: its path in the context and its bytes."""

    path: str
    content: bytes
    mode: int = 0o644


@dataclass
class _Step:
    number: int = 0
    total: int = 0
    started: float = field(default_factory=time.monotonic)
    lines: list[str] = field(default_factory=list)
    cached: bool = False


def build_context(files: list[ContextFile]) -> bytes:
    """A tar of exactly the files a Containerfile uses, with fixed metadata.

    Fixed mtimes and owners make the context, and so podman's COPY cache keys,
    depend on content only.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for item in sorted(files, key=lambda f: f.path):
            info = tarfile.TarInfo(item.path)
            info.size = len(item.content)
            info.mode = item.mode
            info.mtime = 0
            info.uid = info.gid = 0
            tar.addfile(info, io.BytesIO(item.content))
    return buffer.getvalue()


class Podman:
    """A connection to podman's API."""

    def __init__(self, client: PodmanClient) -> None:
        self.client = client
        self._open: set[Any] = set()  # streaming responses, closed on interrupt
        self._lock = threading.Lock()
        self._before: set[str] | None = None  # build containers that existed before our builds

    # -- build ---------------------------------------------------------------

    def build(
        self,
        context: bytes,
        *,
        labels: Mapping[str, str],
        no_cache: bool = False,
        on_event: Callable[[BuildEvent], None] = lambda event: None,
    ) -> BuildResult:
        """Build the context's Containerfile; no tag is set (tagging is for the caller)."""
        with self._lock:
            if self._before is None:
                self._before = self._working_containers()
        params = {
            "dockerfile": "Containerfile",
            "rm": True,
            "forcerm": True,  # intermediate containers go even when a step fails
            "layers": True,
            # podman 4.3's API defaults to the Docker format while its layer cache holds OCI
            # images (what the CLI builds): without this no step is ever taken from cache.
            "outputformat": "application/vnd.oci.image.manifest.v1+json",
            "nocache": no_cache,
            "labels": json.dumps(dict(labels)),
        }
        try:
            response = self.client.api.post(
                "/build",
                params=params,
                data=context,
                headers={"Content-type": "application/x-tar"},
                stream=True,
            )
        except (APIError, PodmanError, OSError) as exc:
            raise PodmanUnavailable(f"podman did not accept the build: {exc}") from exc
        if response.status_code >= 400:
            raise BuildFailed(f"podman refused the build: {_api_message(response)}", None, None, ())
        step = _Step()
        seconds: list[float] = []
        cached: list[int] = []
        image_id = None
        with self._streaming(response):
            for raw in response.iter_lines():
                if not raw:
                    continue
                message = json.loads(raw)
                if "error" in message:
                    raise _build_error(str(message["error"]), step)
                image_id = _aux_id(message) or image_id
                for line in str(message.get("stream", "")).splitlines():
                    if match := _STEP.match(line):
                        if step.number:
                            seconds.append(time.monotonic() - step.started)
                            if step.cached:
                                cached.append(step.number)
                        step = _Step(int(match[1]), int(match[2]))
                        # FROM runs nothing and podman never says "Using cache" for it.
                        step.cached = match[3].startswith("FROM ")
                        on_event(BuildEvent(step.number, step.total, match[3], starts_step=True))
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
        if image_id is None:
            raise _build_error("the build ended without an image", step)
        return BuildResult(image_id, tuple(seconds), tuple(cached))

    # -- images --------------------------------------------------------------

    def tag(self, image_id: str, reference: str) -> None:
        repository, tag = split_reference(reference)
        try:
            ok = self.client.images.get(image_id).tag(repository, tag)
        except (APIError, PodmanError) as exc:
            raise NestcustomError(f"cannot tag {image_id[:12]} as {reference}: {exc}") from exc
        if not ok:
            raise NestcustomError(f"podman did not tag {image_id[:12]} as {reference}")

    def inspect(self, reference: str) -> dict[str, Any]:
        try:
            attrs: dict[str, Any] = self.client.images.get(reference).attrs
        except ImageNotFound as exc:
            raise NestcustomError(f"no image {reference} in podman's storage") from exc
        return attrs

    def exists(self, reference: str) -> bool:
        return bool(self.client.images.exists(reference))

    def remove(self, reference: str) -> None:
        with contextlib.suppress(ImageNotFound):
            self.client.images.remove(reference)

    def load_stream(self, chunks: Iterable[bytes], name: str = "image") -> str:
        """Load a docker-archive tar, sent as it is produced; returns the image ID.

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
        except (APIError, PodmanError, OSError) as exc:
            raise NestcustomError(f"podman did not load {name}: {exc}") from exc
        if response.status_code >= 400:
            raise NestcustomError(f"podman did not load {name}: {_api_message(response)}")
        names = response.json().get("Names") or []
        for loaded in names:
            if match := _IMAGE_ID.match(str(loaded).removeprefix("sha256:")):
                return match[1]
        raise NestcustomError(f"podman loaded {name} but named no image: {names}")

    # -- push ----------------------------------------------------------------

    def push(
        self,
        reference: str,
        *,
        tls_verify: bool = True,
        attempts: int = 4,
        first_delay: float = 1.0,
        on_line: Callable[[str], None] = lambda line: None,
    ) -> None:
        """Push `reference` to its registry, retrying transient failures with backoff."""
        delay = first_delay
        for attempt in range(1, attempts + 1):
            try:
                self._push_once(reference, tls_verify, on_line)
                return
            except PushFailed as exc:
                if attempt == attempts or not any(t in exc.message for t in _TRANSIENT):
                    if attempt > 1:
                        exc.message += f" (after {attempt} attempts)"
                    raise
                on_line(f"push failed ({exc.message}); retrying in {delay:.0f} s")
                time.sleep(delay)
                delay *= 2

    def _push_once(self, reference: str, tls_verify: bool, on_line: Callable[[str], None]) -> None:
        name = urllib.parse.quote(reference, safe="")
        params = {"destination": reference, "tlsVerify": tls_verify, "quiet": False}
        try:
            response = self.client.api.post(f"/images/{name}/push", params=params, stream=True)
        except (APIError, PodmanError, OSError) as exc:
            raise PushFailed(f"cannot push {reference}: {exc}") from exc
        if response.status_code >= 400:
            raise PushFailed(
                f"cannot push {reference}: {_api_message(response)}", _push_hint(response.text)
            )
        with self._streaming(response):
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
    def _streaming(self, response: Any) -> Iterator[None]:
        with self._lock:
            self._open.add(response)
        try:
            yield
        finally:
            with self._lock:
                self._open.discard(response)
            response.close()

    def abort_streams(self, settle: float = 10.0) -> None:
        """Close every build or push stream, and remove what the cancelled builds left.

        podman 4.3 cancels a build whose client went away but leaves buildah's
        working containers behind; those that appeared since our first build
        started are removed, until none appears for a second.
        """
        with self._lock:
            responses = list(self._open)
            before = self._before
        for response in responses:
            with contextlib.suppress(Exception):
                response.close()
        if before is None:
            return
        deadline = time.monotonic() + settle
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 1.5:
            stray = self._working_containers() - before
            for container in stray:
                with contextlib.suppress(Exception):
                    self.client.api.delete(f"/containers/{container}", params={"force": True})
            if stray:
                quiet_since = time.monotonic()
            time.sleep(0.3)

    def _working_containers(self) -> set[str]:
        """IDs of buildah's build containers (podman calls them external)."""
        try:
            response = self.client.api.get(
                "/containers/json", params={"all": True, "external": True}
            )
            listed = response.json() if response.status_code == 200 else []
        except (APIError, PodmanError, OSError, ValueError):
            return set()
        return {
            str(item["Id"])
            for item in listed
            if any(str(name).endswith("-working-container") for name in item.get("Names") or [])
        }


def split_reference(reference: str) -> tuple[str, str]:
    """`registry:5000/ns/name:tag` -> (`registry:5000/ns/name`, `tag`); tag defaults to latest."""
    last = reference.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = reference.rpartition(":")
        return repository, tag
    return reference, "latest"


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


def _push_hint(text: str) -> str | None:
    if "unauthorized" in text or "authentication required" in text:
        return "log in first: podman login REGISTRY"
    if "http response to HTTPS client" in text or "x509" in text:
        return "for a plain-http test registry pass --no-tls-verify (never for production)"
    if "pinging container registry" in text or "connection refused" in text:
        return "is the registry up, and is the name right?"
    return None


# -- the API service ---------------------------------------------------------


def _candidate_sockets() -> list[str]:
    found = []
    if host := os.environ.get("CONTAINER_HOST"):
        found.append(host)
    if runtime := os.environ.get("XDG_RUNTIME_DIR"):
        found.append(f"unix://{runtime}/podman/podman.sock")
    found.append("unix:///run/podman/podman.sock")
    return found


def _answers(url: str) -> bool:
    if url.startswith("unix://") and not Path(url.removeprefix("unix://")).exists():
        return False
    try:
        with PodmanClient(base_url=url, timeout=5) as client:
            return bool(client.ping())
    except Exception:  # any failure to talk means "not this one"
        return False


@contextlib.contextmanager
def connect(timeout: float = 30) -> Iterator[Podman]:
    """A Podman on a running API service, or on one started for this run."""
    for url in _candidate_sockets():
        if _answers(url):
            log.debug("using the podman service at %s", url)
            with PodmanClient(base_url=url, timeout=3600) as client:
                yield Podman(client)
            return
    binary = proc.require("podman", "podman")
    with tempfile.TemporaryDirectory(prefix="nestcustom-podman-") as tmp:
        url = f"unix://{tmp}/podman.sock"
        service = proc.start([binary, "system", "service", "--time=0", url])
        try:
            deadline = time.monotonic() + timeout
            while not _answers(url):
                if service.poll() is not None or time.monotonic() > deadline:
                    stderr = (
                        service.stderr.read().decode(errors="replace") if service.stderr else ""
                    )
                    raise PodmanUnavailable(
                        "podman's API service did not start"
                        + (f": {stderr.strip()[-300:]}" if stderr else ""),
                        "check that `podman info` works for this user",
                    )
                time.sleep(0.02)  # the service answers within a few tens of ms
            with PodmanClient(base_url=url, timeout=3600) as client:
                yield Podman(client)
        finally:
            service.terminate()
            try:
                service.wait(timeout=10)
            except Exception:
                service.kill()
