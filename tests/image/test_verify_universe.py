"""nestcustom test: testinfra checks of a built image, against real podman and the fixture bases.

The images are built once per module with `podman build` FROM the fixture
NestOS images (packages from the served test repository); the recipes are
written as YAML and loaded the way users load them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from nestcustom.errors import NestcustomError
from nestcustom.image import checks, verify
from nestcustom.image.checks import CheckResult
from nestcustom.image.rpmversion import rpm_vercmp
from nestcustom.image.verify import VerifyReport, junit_xml, verify_image
from nestcustom.recipe.load import load_recipe
from nestcustom.recipe.model import Base, Flavor, Layer, Recipe, Swap
from tests.universe.base.fixtures_base import NestosImage
from tests.universe.rpmrepo import RpmRepo

# The fixtures (rpm_repo, nestos_sp2, ...) come from tests/universe/fixtures.py.

pytestmark = pytest.mark.universe

AGENT_CONF = "token = abc\n"
AGENT_LINK = "/etc/systemd/system/multi-user.target.wants/agent.service"
NO_VAR = "no files or symlinks (a NestOS host drops /var)"
AGENT_UNIT = "[Unit]\nDescription=agent\n[Service]\nExecStart=/usr/bin/nc-hello\n[Install]\nWantedBy=multi-user.target\n"
# Answers `systemctl is-enabled UNIT` from /etc/fake-systemctl/UNIT, like systemctl's offline mode.
FAKE_SYSTEMCTL = """\
#!/bin/sh
[ "$1" = is-enabled ] || exit 1
shift
[ "$1" = -- ] && shift
if [ -f "/etc/fake-systemctl/$1" ]; then cat "/etc/fake-systemctl/$1"; exit 0; fi
echo "Failed to get unit file state for $1: No such file or directory" >&2
exit 1
"""


def podman(*args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["podman", *args], capture_output=True, text=True, check=False, timeout=600
    )
    if check and done.returncode:
        raise AssertionError(f"podman {' '.join(args)}: {done.stderr}")
    return done.stdout


def build(image: NestosImage, steps: str, files: dict[str, str | bytes] | None = None) -> str:
    result, tag = image.build(steps, files)
    assert result.returncode == 0, result.output[-3000:]
    return tag


@pytest.fixture(scope="module")
def images(
    nestos_sp2: NestosImage, nestos_sp1: NestosImage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    good = build(
        nestos_sp2,
        "COPY nctest.repo /etc/yum.repos.d/nctest.repo\n"
        "RUN rpm-ostree install strace nc-hello && rm -rf /var/cache && ostree container commit\n"
        "RUN rpm-ostree override remove toolbox && ostree container commit\n"
        "COPY agent.conf /etc/nc/agent.conf\n"
        "COPY agent.service /usr/lib/systemd/system/agent.service\n"
        "RUN printf 'Example Corp\\n' > /etc/motd && chmod 0640 /etc/motd"
        " && chmod 0600 /etc/nc/agent.conf"
        " && mkdir -p /etc/systemd/system/multi-user.target.wants"
        " && ln -s /usr/lib/systemd/system/agent.service"
        " /etc/systemd/system/multi-user.target.wants/agent.service"
        # masked, although the base's timers.target.wants still links it
        " && ln -s /dev/null /etc/systemd/system/fstrim.timer"
        " && ostree container commit",
        {"agent.conf": AGENT_CONF, "agent.service": AGENT_UNIT},
    )
    # SP1's commit reports /var content but lets it through: 12 files and a link.
    sp1var = build(
        nestos_sp1,
        "COPY nctest.repo /etc/yum.repos.d/nctest.repo\n"
        "RUN rpm-ostree install nc-varwriter && rm -rf /var/cache && ostree container commit\n"
        "RUN mkdir -p /var/lib/extra && for i in 1 2 3 4 5 6 7 8 9 10 11; do"
        " touch /var/lib/extra/f$i; done && ln -s /etc/motd /var/lib/extra/link"
        " && ostree container commit\n"
        # A volume would cover the image's files there: the check must still see them.
        "VOLUME /var/lib/extra",
    )
    on_good = NestosImage(ref=good, scratch=tmp_path_factory.mktemp("verify-fake"))
    fake = build(
        on_good,
        "COPY systemctl /usr/bin/systemctl\n"
        "RUN chmod 0755 /usr/bin/systemctl && mkdir /etc/fake-systemctl"
        " && echo static > /etc/fake-systemctl/agent.service"
        " && echo enabled > /etc/fake-systemctl/zincati.service",
        {"systemctl": FAKE_SYSTEMCTL},
    )
    try:
        yield {"good": good, "sp1var": sp1var, "fake-systemctl": fake}
    finally:
        on_good.cleanup()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "recipes").mkdir()
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "agent.conf").write_text(AGENT_CONF)
    (tmp_path / "files" / "other.conf").write_text("token = xyz\n")
    return tmp_path


def load(project: Path, body: str, base: str = "", name: str = "r") -> Recipe:
    base = (
        base
        or 'base: {image: "localhost/nestcustom-test/nestos:22.03-LTS-SP2.20230922.0-x86_64", rpm-ostree: "2022.17"}'
    )
    path = project / "recipes" / f"{name}.yaml"
    path.write_text(f"name: {name}\n{base}\n{body}")
    return load_recipe(path, project=project).recipe


def results(report: VerifyReport) -> dict[str, CheckResult]:
    """The results by "KIND SUBJECT EXPECTATION[ (built-in)]", as `nestcustom test` shows them."""
    found: dict[str, CheckResult] = {}
    for result in report.results:
        key = f"{result.kind} {result.subject} {result.expectation}"
        key += " (built-in)" if result.builtin else ""
        assert key not in found, f"checked twice: {key}"
        found[key] = result
    return found


def failures(report: VerifyReport) -> dict[str, str]:
    return {k: r.detail for k, r in results(report).items() if not r.passed}


def containers_of(image: str) -> str:
    return podman("ps", "--all", "--filter", f"ancestor={image}", "--format", "{{.Names}}").strip()


# ------------------------------------------------------------------ all passing


def test_everything_passes(project: Path, rpm_repo: RpmRepo, images: dict[str, str]) -> None:
    hello_url = f"https://repo.example.com/el/{rpm_repo.packages['nc-hello']}.rpm"
    recipe = load(
        project,
        f"""\
layers:
  - {{name: trim, remove: [strace]}}
  - {{name: tools, install: [strace, nc-hello]}}
  - {{name: slim, remove: [toolbox]}}
  - {{name: pin, replace: ["{hello_url}"], swap: [{{remove: toolbox, install: nc-libgreet}}]}}
files:
  - {{src: files/agent.conf, dest: /etc/nc/agent.conf, mode: "0600"}}
systemd: {{enable: [agent.service], disable: [zincati.service]}}
tests:
  packages: {{present: ['strace >= 5.0', 'nc-hello = 1.0', nc-libgreet], absent: [toolbox, nc-varwriter]}}
  files:
    - {{path: /etc/motd, mode: '640', contains: "Example Corp"}}
    - {{path: /etc/nc/agent.conf, mode: '0600'}}
    - {{path: /etc/nope, exists: false}}
  commands:
    - {{run: [nc-hello], stdout: 'hello from nc-hello 1\\.0'}}
    - {{run: [sh, -c, 'exit 3'], exit: 3}}
    - {{run: [echo, '$(touch /tmp/pwned)'], stdout: '^\\$\\(touch /tmp/pwned\\)$'}}
    - {{run: [test, '!', -e, /tmp/pwned]}}
  units: {{enabled: [agent.service], disabled: [zincati.service, fstrim.timer, nosuch.service]}}
""",
    )
    report = verify_image(recipe, images["good"])
    assert failures(report) == {}
    assert report.passed
    builtin = [(r.kind, r.subject, r.expectation) for r in report.results if r.builtin]
    assert (
        builtin
        == [
            ("var", "/var", NO_VAR),
            ("package", "strace", "installed"),  # removed by trim, installed again by tools: once
            ("package", "nc-hello", "installed, version 1.0-1"),  # the replace's file wins
            ("package", "toolbox", "absent"),
            ("package", "nc-libgreet", "installed"),
            ("file", "/etc/nc/agent.conf", "exists"),
            ("file", "/etc/nc/agent.conf", "mode 0600"),
            ("file", "/etc/nc/agent.conf", f"content sha256 {recipe.files[0].sha256[:12]}"),
            ("unit", "agent.service", "enabled"),
            ("unit", "zincati.service", "disabled"),
        ]
    )
    assert len(report.results) == len(builtin) + 19
    # The echo's argument was one literal word: no shell ran the touch (the last command).
    assert report.results[-1].subject == "test '!' -e /tmp/pwned"
    assert containers_of(images["good"]) == ""


# ------------------------------------------------------------------ failures


def test_each_kind_of_failure_says_what_was_found(
    project: Path, rpm_repo: RpmRepo, images: dict[str, str]
) -> None:
    recipe = load(
        project,
        """\
layers:
  - {name: tools, install: [strace, nc-missing]}
  - {name: newer, install: ["http://127.0.0.1:1/extra/nc-hello-2.0-1.noarch.rpm"]}
  - {name: odd, install: ["https://repo.example.com/latest.rpm"]}
  - {name: gone, remove: [zincati], swap: [{remove: nc-libgreet, install: nc-other}]}
files:
  - {src: files/other.conf, dest: /etc/nc/agent.conf, mode: "0644"}
  - {src: files/other.conf, dest: /etc/nc/never.conf}
systemd: {enable: [zincati.service], disable: [agent.service]}
tests:
  packages: {present: ['strace < 5.0', 'nc-hello > 1.0-1', nc-absent], absent: [nc-hello]}
  files:
    - {path: /etc/motd, mode: '0644', contains: Other Corp}
    - {path: /etc/missing, contains: x}
    - {path: /etc/motd, exists: false}
    - {path: "/etc/motd; touch /tmp/pwned"}
  commands:
    - {run: [nc-hello], exit: 3, stdout: goodbye}
    - {run: [no-such-command]}
    - {run: [nc-hello], stdout: '('}
    - {run: [test, '!', -e, /tmp/pwned]}
  units: {enabled: [fstrim.timer, nosuch.service], disabled: [agent.service]}
""",
    )
    report = verify_image(recipe, images["good"])
    found = failures(report)
    strace = found.pop("package strace installed, version < 5.0")
    assert strace.startswith("installed version is 6.")
    sha, never = (spec.sha256[:12] for spec in recipe.files)
    assert found == {
        "package nc-missing installed (built-in)": "not installed (layer tools installs it)",
        "package nc-hello installed, version 2.0-1 (built-in)": (
            "installed version is 1.0-1 (layer newer installs it)"
        ),
        "package https://repo.example.com/latest.rpm installed (built-in)": (
            "cannot tell the package from the file name "
            "(not NAME-VERSION-RELEASE.ARCH.rpm; layer odd)"
        ),
        "package zincati absent (built-in)": (
            "installed: 0.0.24-3.oe2203sp2.x86_64 (layer gone removes it)"
        ),
        "package nc-libgreet absent (built-in)": "installed: 1.0-1.noarch (layer gone removes it)",
        "package nc-other installed (built-in)": "not installed (layer gone installs it)",
        "file /etc/nc/agent.conf mode 0644 (built-in)": "mode is 0600",
        f"file /etc/nc/agent.conf content sha256 {sha} (built-in)": (
            f"content sha256 is {sha12(AGENT_CONF)}: not the recipe's file"
        ),
        "file /etc/nc/never.conf exists (built-in)": "missing",
        "file /etc/nc/never.conf mode 0644 (built-in)": "missing",
        f"file /etc/nc/never.conf content sha256 {never} (built-in)": "missing",
        # The fixture base has the real systemctl, which answers offline.
        "unit zincati.service enabled (built-in)": "systemctl is-enabled says static",
        "unit agent.service disabled (built-in)": "systemctl is-enabled says enabled",
        "package nc-hello installed, version > 1.0-1": "installed version is 1.0-1",
        "package nc-absent installed": "not installed",
        "package nc-hello absent": "installed: 1.0-1.noarch",
        "file /etc/motd mode 0644": "mode is 0640",
        "file /etc/motd contains 'Other Corp'": (
            "text not found in 13 bytes starting 'Example Corp\\n'"
        ),
        "file /etc/missing exists": "missing",
        "file /etc/missing contains 'x'": "missing",
        "file /etc/motd does not exist": "exists",
        "file /etc/motd; touch /tmp/pwned exists": "missing",
        "unit fstrim.timer enabled": "systemctl is-enabled says masked",
        "unit nosuch.service enabled": (
            "not enabled (no *.wants or *.requires symlink); there is no unit file of that name; "
            "systemctl is-enabled did not answer (exit 1: Failed to get unit file state for "
            "nosuch.service: No such file or directory)"
        ),
        "unit agent.service disabled": "systemctl is-enabled says enabled",
        "command nc-hello exit 3, stdout ~ 'goodbye'": "exit 0; stdout was 'hello from nc-hello 1.0'",
        "command no-such-command exit 0": "exit 127: /bin/sh: 1: no-such-command: not found",
        "command nc-hello exit 0, stdout ~ '('": (
            "bad regular expression: missing ), unterminated subpattern at position 0"
        ),
    }
    assert not report.passed
    assert results(report)[f"var /var {NO_VAR} (built-in)"].passed
    assert results(report)["file /etc/nc/agent.conf exists (built-in)"].passed
    # The quoted path was one argument: no shell ran the touch (commands run after files).
    assert results(report)["command test '!' -e /tmp/pwned exit 0"].passed


def sha12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def test_var_content_is_caught_in_an_sp1_image(project: Path, images: dict[str, str]) -> None:
    recipe = load(project, "layers:\n  - {name: state, install: [nc-varwriter]}\n")
    report = verify_image(recipe, images["sp1var"])
    ((key, detail),) = failures(report).items()
    assert key == f"var /var {NO_VAR} (built-in)"
    shown, _, more = detail.partition(" and ")
    paths = shown.split(", ")
    assert len(paths) == checks.VAR_SHOWN
    assert more == "3 more"
    assert all(p.startswith(("/var/lib/extra/", "/var/lib/nc-varwriter/")) for p in paths)
    everything = podman(
        "run", "--rm", images["sp1var"], "find", "/var", "(", "-type", "f", "-o", "-type", "l", ")"
    ).split()
    assert "/var/lib/nc-varwriter/state" in everything
    assert "/var/lib/extra/link" in everything
    assert set(paths) < set(everything)


def test_var_is_not_checked_for_newstart(project: Path, images: dict[str, str]) -> None:
    recipe = load(project, "layers:\n  - {name: state, install: [nc-varwriter]}\n")
    newstart = dataclasses.replace(
        recipe, base=dataclasses.replace(recipe.base, flavor=Flavor.NEWSTART)
    )
    report = verify_image(newstart, images["sp1var"])
    assert report.passed
    assert [r.kind for r in report.results] == ["package"]


def test_systemctl_is_asked_where_it_answers(project: Path, images: dict[str, str]) -> None:
    recipe = load(
        project,
        "layers:\n  - {name: tools, install: [strace]}\n"
        "tests:\n  units: {enabled: [agent.service, zincati.service], disabled: [fstrim.timer]}\n",
    )
    report = verify_image(recipe, images["fake-systemctl"])
    assert failures(report) == {
        # static also exits 0 from is-enabled, but nothing links the unit: not enabled.
        "unit agent.service enabled": "systemctl is-enabled says static",
    }
    # fstrim.timer is unknown to the fake: its answer is an error, so the symlinks decide.
    assert results(report)["unit fstrim.timer disabled"].passed


def test_swap_checks_built_directly(images: dict[str, str]) -> None:
    recipe = Recipe(
        path="recipes/direct.yaml",
        name="direct",
        base=Base("localhost/nestcustom-test/nestos:22.03-LTS-SP2.20230922.0-x86_64"),
        layers=(
            Layer("swap", swap=(Swap(("toolbox",), ("nc-libgreet >= 1.0",)),)),
            Layer("tools", install=("strace >= 99",)),
        ),
    )
    report = verify_image(recipe, images["good"])
    assert {
        (r.subject, r.expectation): r.passed for r in report.results if r.kind == "package"
    } == {
        ("toolbox", "absent"): True,
        ("nc-libgreet", "installed, version >= 1.0"): True,
        ("strace", "installed, version >= 99"): False,
    }


# ------------------------------------------------------------------ the container


def test_container_is_removed_even_when_checks_fail(project: Path, images: dict[str, str]) -> None:
    recipe = load(project, "layers:\n  - {name: tools, install: [no-such-package]}\n")
    report = verify_image(recipe, images["good"])
    assert not report.passed
    assert containers_of(images["good"]) == ""


def test_container_is_removed_on_interrupt(
    project: Path, images: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = load(project, "layers:\n  - {name: tools, install: [strace]}\n")
    seen: list[str] = []

    def interrupted(recipe: Recipe, host: Any, *more: Any) -> list[CheckResult]:
        seen.append(containers_of(images["good"]))
        raise KeyboardInterrupt

    monkeypatch.setattr(verify, "run_checks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        verify_image(recipe, images["good"])
    assert seen[0].startswith("nestcustom-test-")  # it was running while the checks ran
    assert containers_of(images["good"]) == ""


def test_missing_image_is_a_clear_error(project: Path) -> None:
    recipe = load(project, "layers: [{name: a, install: [x]}]\n")
    with pytest.raises(
        NestcustomError, match="no image localhost/nctest/never-built:latest"
    ) as exc:
        verify_image(recipe, "localhost/nctest/never-built:latest")
    assert exc.value.hint is not None
    assert "nestcustom build recipes/r.yaml" in exc.value.hint


# ------------------------------------------------------------------ JUnit


def test_junit_xml_counts_failures(project: Path, images: dict[str, str]) -> None:
    recipe = load(
        project,
        "layers:\n  - {name: tools, install: [strace, jq]}\n"
        "tests:\n  files: [{path: /etc/motd, mode: '0600', contains: '<&>'}]\n",
        name="host-agent",
    )
    report = verify_image(recipe, images["good"])
    suite = ElementTree.fromstring(junit_xml(report, "host-agent"))
    assert suite.tag == "testsuite"
    assert (suite.get("name"), suite.get("tests"), suite.get("failures"), suite.get("errors")) == (
        "host-agent",
        str(len(report.results)),
        "3",
        "0",
    )
    cases = suite.findall("testcase")
    assert len(cases) == len(report.results) == 6
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert set(failed) == {"jq installed", "/etc/motd mode 0600", "/etc/motd contains '<&>'"}
    jq = failed["jq installed"]
    assert jq is not None
    assert jq.get("message") == jq.text == "not installed (layer tools installs it)"
    classes = {c.get("classname") for c in cases}
    assert "host-agent.builtin.package" in classes
    assert "host-agent.tests.file" in classes
    image = suite.find("properties/property[@name='image']")
    assert image is not None
    assert image.get("value") == images["good"]


def test_junit_xml_of_a_passing_report() -> None:
    report = VerifyReport(
        "img", (CheckResult("package", "strace", "installed", True, "0:6.1-1", True),)
    )
    suite = ElementTree.fromstring(junit_xml(report, "r"))
    assert (suite.get("tests"), suite.get("failures")) == ("1", "0")
    assert suite.find("testcase/failure") is None


# ------------------------------------------------------------------ rpm's version order


def test_vercmp_agrees_with_rpm() -> None:
    """rpm_vercmp against rpm's own rpm.vercmp, on generated and well-known pairs."""
    rng = random.Random(20230922)
    pieces = ["1", "2", "10", "010", "0", "a", "b", "rc", "git", "~", "^", ".", "_", "+"]
    made = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 5))) for _ in range(400)]
    pairs = [(made[i], made[i + 1]) for i in range(0, len(made) - 1)]
    pairs += [("1.0", "1.0.0"), ("5.10", "5.9"), ("1.0~rc1", "1.0"), ("1.0^1", "1.0.1")]
    pairs += [(a, a + "^") for a in made[:20]] + [(a, a + "~") for a in made[20:40]]
    table = ",".join(f'{{"{a}","{b}"}}' for a, b in pairs)
    lua = (
        f"%{{lua: t = {{}} for _, p in ipairs({{{table}}}) do "
        't[#t+1] = rpm.vercmp(p[1], p[2]) end print(table.concat(t, " "))}'
    )
    expected = subprocess.run(
        ["rpm", "--eval", lua], capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(expected) == len(pairs)
    wrong = [
        (a, b, int(e), rpm_vercmp(a, b))
        for (a, b), e in zip(pairs, expected, strict=True)
        if rpm_vercmp(a, b) != int(e)
    ]
    assert wrong == []


def test_cli_prints_a_table_and_writes_junit(project: Path, images: dict[str, str]) -> None:
    """`nestcustom test` as a user runs it: a table, a closing count, JUnit XML, exit 1 on failure."""
    recipe = project / "recipes" / "cli.yaml"
    recipe.write_text(
        f'name: cli\nbase: {{image: "{images["good"]}"}}\n'
        "layers:\n  - {name: tools, install: [strace, no-such-package]}\n"
    )
    junit = project / "report.xml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nestcustom",
            "test",
            "recipes/cli.yaml",
            "--image",
            images["good"],
            "--junit",
            str(junit),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert "FAIL  package  no-such-package" in result.stdout
    assert "PASS  package  strace" in result.stdout
    assert re.search(r"^\d+ passed, 1 failed$", result.stdout.splitlines()[-1])
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("failures") == "1"


def test_a_hung_command_is_stopped_in_the_container_at_its_timeout(
    project: Path, images: dict[str, str]
) -> None:
    """The timed-out command is killed in the container, not only its podman exec client:
    the next check sees no trace of it."""
    recipe = load(
        project,
        "layers:\n  - {name: tools, install: [strace]}\n"
        "tests:\n  commands:\n"
        "    - {run: [sh, -c, 'sleep 300'], timeout: 2}\n"
        '    - run: [sh, -c, \'for f in /proc/[0-9]*/cmdline; do tr "\\0" " " < $f; echo; done'
        ' | grep -q "^sleep 300" && exit 1; exit 0\']\n',
    )
    started = time.monotonic()
    report = verify_image(recipe, images["good"])
    assert time.monotonic() - started < 60
    hung, after = [r for r in report.results if r.kind == "command"]
    assert not hung.passed
    assert hung.detail == "timed out: still running after 2 s"
    assert after.passed, after.detail


def test_checks_see_the_images_files_under_its_volume_paths(
    project: Path, images: dict[str, str]
) -> None:
    """A VOLUME would cover the image's files there with an empty volume."""
    recipe = load(
        project,
        "layers:\n  - {name: tools, install: [nc-varwriter]}\n"
        "tests:\n  files:\n    - {path: /var/lib/extra/f1}\n    - {path: /var/lib/extra/link}\n",
    )
    report = verify_image(recipe, images["sp1var"])
    found = {r.subject: r.passed for r in report.results if r.kind == "file" and not r.builtin}
    assert found == {"/var/lib/extra/f1": True, "/var/lib/extra/link": True}
