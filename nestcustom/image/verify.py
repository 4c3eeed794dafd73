"""Run an image's checks with testinfra, in a throwaway container; report as JUnit.

The checks themselves live in `checks`; this module owns the container (always
removed, also when the run is interrupted) and adapts testinfra's host to the
checks' runner.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

from nestcustom import proc
from nestcustom.errors import NestcustomError
from nestcustom.image.checks import CheckResult, Output
from nestcustom.image.suite import run_checks
from nestcustom.recipe.model import Recipe

IMAGE_VIEW = "/run/nestcustom/image"


@dataclass(frozen=True)
class VerifyReport:
    image: str
    results: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.passed)


@contextmanager
def throwaway_container(image: str, recipe_path: str = "RECIPE") -> Iterator[str]:
    """The name of a running container of `image`, removed on the way out whatever happens."""
    podman = proc.require("podman", "podman")
    if proc.run([podman, "image", "exists", image], check=False).returncode != 0:
        raise NestcustomError(
            f"no image {image} in podman's storage",
            f"build it first (nestcustom build {recipe_path}), "
            "or pass the tag or ID of a built image with --image",
        )
    name = f"nestcustom-test-{uuid.uuid4().hex[:12]}"
    try:
        # The try starts before `run`: an interrupted or failed run may leave a created
        # container behind. --no-hosts keeps the image's own /etc/hosts visible, and
        # --image-volume=ignore its content under VOLUME paths (else a volume covers it).
        proc.run(
            [
                podman,
                "run",
                "--detach",
                "--rm",
                "--name",
                name,
                "--pull=never",
                "--network=none",
                "--no-hosts",
                "--image-volume=ignore",
                # The image itself, read-only, for the files podman mounts over (/etc/hostname).
                "--mount",
                f"type=image,source={image},target={IMAGE_VIEW}",
                "--entrypoint",
                "sleep",
                image,
                "infinity",
            ],
            timeout=120,
            hint="the checks need `sleep` in the image to keep the container running",
        )
        yield name
    finally:
        proc.run([podman, "rm", "--force", "--time", "0", name], check=False, timeout=60)


class _TestinfraRunner:
    """testinfra's host as the checks' runner: output as bytes, failures as results.

    testinfra's run() has no timeout; a command with one runs as testinfra would
    run it (`podman exec NAME /bin/sh -c LINE`, the line quoted by testinfra), through
    proc with the timeout; what it left running in the container is then killed.
    """

    def __init__(self, host: Any, container: str) -> None:
        self.host = host
        self.container = container

    def run(self, command: str, *args: str, timeout: float | None = None) -> Output:
        if timeout is not None:
            return self._run_with_timeout(self.host.backend.get_command(command, *args), timeout)
        try:
            out = self.host.run(command, *args)
            stderr = bytes(out.stderr_bytes).decode(errors="replace")
            return Output(int(out.rc), bytes(out.stdout_bytes), stderr)
        except Exception as exc:  # testinfra could not even run podman exec
            return Output(-1, b"", f"cannot run {command.split()[0]} in the container: {exc}")

    def _run_with_timeout(self, line: str, timeout: float) -> Output:
        podman = proc.require("podman", "podman")
        argv = [podman, "exec", self.container, "/bin/sh", "-c", line]
        try:
            done = proc.run(argv, check=False, timeout=timeout)
        except proc.CommandError as exc:
            if exc.returncode == -1:  # proc's word for "did not finish in time"
                self._stop_commands()
                return Output(-1, b"", f"still running after {timeout:g} s", timed_out=timeout)
            return Output(-1, b"", f"cannot run podman exec: {exc.message}")
        return Output(done.returncode, done.raw_stdout, done.stderr)

    def _stop_commands(self) -> None:
        """Kill what a timed-out command left running in the container.

        Killing the `podman exec` client does not stop the command inside, which would
        go on using the container (and what the next checks see). Checks run one at a
        time, so every process but the container's own `sleep` (pid 1) and this
        killer is the timed-out command's.
        """
        podman = proc.require("podman", "podman")
        script = (
            "for p in /proc/[0-9]*; do p=${p#/proc/}; "
            '[ "$p" = 1 ] || [ "$p" = $$ ] || kill -9 "$p" 2>/dev/null; done; exit 0'
        )
        proc.run([podman, "exec", self.container, "/bin/sh", "-c", script], check=False, timeout=30)


def verify_image(
    recipe: Recipe, image: str, results: list[CheckResult] | None = None
) -> VerifyReport:
    """Run every check of `recipe` against `image` in a throwaway container.

    Each result is also appended to `results` as it comes: what an interrupted
    run's report is made of.
    """
    import testinfra  # slow to import: only when a check really runs

    results = [] if results is None else results
    with throwaway_container(image, recipe.path) as container:
        host = testinfra.get_host(f"podman://{container}")
        runner = _TestinfraRunner(host, container)
        return VerifyReport(image, tuple(run_checks(recipe, runner, results, IMAGE_VIEW)))


# Colour and cursor sequences (CSI ... final byte, OSC ... BEL/ST): noise in a report.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]")
# What XML 1.0 cannot hold at all, escaped or not (its Char production).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """`text` without terminal sequences, other control characters written as \\xNN."""
    text = _ANSI.sub("", text)
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def junit_xml(report: VerifyReport, recipe_name: str, error: str | None = None) -> str:
    """The report as JUnit XML: one testcase per check, a <failure> for each failed one.

    `error` says why the run did not finish (the image is missing, the run was
    interrupted): one more testcase carrying an <error>, so CI shows a red
    report rather than none. Well-formed for any output a check quotes: command
    output may carry colours or other control characters, which XML 1.0 cannot
    hold even as references.
    """
    recipe_name = xml_safe(recipe_name)
    suite = ElementTree.Element(
        "testsuite",
        name=recipe_name,
        tests=str(len(report.results) + (error is not None)),
        failures=str(len(report.failures)),
        errors=str(int(error is not None)),
        skipped="0",
    )
    properties = ElementTree.SubElement(suite, "properties")
    ElementTree.SubElement(properties, "property", name="image", value=xml_safe(report.image))
    for result in report.results:
        origin = "builtin" if result.builtin else "tests"
        case = ElementTree.SubElement(
            suite,
            "testcase",
            classname=f"{recipe_name}.{origin}.{result.kind}",
            name=xml_safe(f"{result.subject} {result.expectation}"),
        )
        if not result.passed:
            detail = xml_safe(result.detail)
            failure = ElementTree.SubElement(case, "failure", message=detail or "failed")
            failure.text = detail
    if error is not None:
        case = ElementTree.SubElement(
            suite, "testcase", classname=f"{recipe_name}.run", name="the checks ran to the end"
        )
        problem = ElementTree.SubElement(case, "error", message=xml_safe(error))
        problem.text = xml_safe(error)
    ElementTree.indent(suite)
    return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
