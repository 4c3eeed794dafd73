"""The nestcustom tool image of tool-image/Containerfile, built here as a user would build it.

No image can be pulled on this machine, so its Debian base is made with mmdebstrap
(cached by the hash of its recipe, like the fixture bases) and given to the
Containerfile's BASE argument; the wheel comes from `python -m build --wheel`.
The image then runs nestcustom on the project's recipes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from nestcustom import __version__

from .base.build import HOST_SOURCES, image_label

ROOT = Path(__file__).resolve().parents[2]
DEBIAN = "localhost/nestcustom-universe/debian:bookworm"
INPUTS_LABEL = "org.nestcustom.universe.inputs"
DEBIAN_RECIPE = "mmdebstrap --variant=minbase --include=ca-certificates bookworm"
TOOL = f"localhost/nestcustom/tool:{__version__}"
LOCAL_CAS = Path("/usr/local/share/ca-certificates")


def _run(argv: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def debian_base(workdir: Path) -> str:
    """A Debian bookworm base image: what `FROM debian:bookworm` would pull elsewhere."""
    if image_label(DEBIAN, INPUTS_LABEL) == DEBIAN_RECIPE:
        return DEBIAN
    tarball = workdir / "debian.tar"
    argv = ["mmdebstrap", "--variant=minbase", "--quiet", "--include=ca-certificates"]
    argv += ["bookworm", str(tarball)]
    if HOST_SOURCES.exists():
        argv.append(str(HOST_SOURCES))
    _run(argv)
    try:
        _run(
            [
                "podman",
                "import",
                "--change",
                f"LABEL {INPUTS_LABEL}={DEBIAN_RECIPE}",
                str(tarball),
                DEBIAN,
            ]
        )
    finally:
        tarball.unlink(missing_ok=True)
    return DEBIAN


def build_tool_image() -> str:
    """Build tool-image/Containerfile from this checkout; the image's reference."""
    with tempfile.TemporaryDirectory(prefix="nc-tool-image-", dir="/var/tmp") as tmp:
        context = Path(tmp)
        base = debian_base(context)
        # From the committed files, as a release job would (and no build/ left in the tree).
        source = context / "source"
        for name in filter(None, _run(["git", "-C", str(ROOT), "ls-files", "-z"]).split("\0")):
            if (ROOT / name).is_file():
                (source / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, source / name)
        wheel = [sys.executable, "-m", "build", "--wheel", "--outdir", str(context / "dist")]
        _run([*wheel, str(source)])
        shutil.copytree(ROOT / "tool-image", context / "tool-image")
        # This machine reaches PyPI through a proxy that re-signs TLS: its CAs go along,
        # as tool-image/ca/README tells a user behind such a proxy to do.
        for cert in LOCAL_CAS.glob("*.crt"):
            shutil.copy(cert, context / "tool-image" / "ca" / cert.name)
        _run(
            [
                "podman", "build", "--pull=never", "--network=host",
                "--build-arg", f"BASE={base}",
                "-f", "tool-image/Containerfile", "-t", TOOL, ".",
            ],
            cwd=context,
        )  # fmt: skip
    return TOOL


def check_tool_image(image: str) -> list[str]:
    """Run nestcustom in the image on this project's recipes: what a pipeline's check does."""
    mount = ["-v", f"{ROOT}:/src:ro", "-w", "/src"]
    said = [_run(["podman", "run", "--rm", image, "nestcustom", "--version"]).strip()]
    recipes = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "recipes").glob("*.yaml"))
    said.append(
        _run(["podman", "run", "--rm", *mount, image, "nestcustom", "validate", *recipes]).strip()
    )
    said.append(
        _run(
            ["podman", "run", "--rm", *mount, image, "nestcustom", "render", "--all", "--check"]
        ).strip()
    )
    # podman inside it builds (a privileged job, as a GitLab runner would start it)
    script = 'printf "FROM scratch\\nLABEL a=b\\n" >/tmp/C && podman build -q -f /tmp/C /tmp'
    built = _run(["podman", "run", "--rm", "--privileged", image, "sh", "-c", script]).strip()
    said.append(f"podman in the tool image built {built[:12]}")
    return said
