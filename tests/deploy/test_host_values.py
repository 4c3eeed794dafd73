"""{{kernel}} and the other values of an image, filled on a host (host-values.sh, carried by
`deploy --recipe`'s health poll and the updater's health.sh) exactly as the build filled
them in the image (build-helper.sh `facts`): run side by side in one throwaway root."""

from __future__ import annotations

import platform
import shlex
from pathlib import Path

from nestcustom.deploy.health import HOST_VALUES
from tests.universe.helper_root import make_root

KVER = "5.10.0-182.0.0.95.oe2203sp2.x86_64"


def test_a_host_fills_each_value_as_the_build_did_and_leaves_an_unknown_one(
    tmp_path: Path,
) -> None:
    box = make_root(tmp_path / "box")
    box.write(f"/usr/lib/modules/{KVER}/vmlinuz", "kernel image\n")
    box.write("/hv.sh", HOST_VALUES)
    names = ("kernel", "os.id", "os.version", "dist", "arch")
    words = " ".join(f"{name}={{{{{name}}}}}" for name in names) + " left={{nothing}}"
    filled = box.sh(f". /hv.sh; nc_fill {shlex.quote(words)}")
    assert filled.returncode == 0, filled.stderr
    built = box.helper("facts", "/nc-facts")
    assert built.returncode == 0, built.stderr
    facts = (box.root / "nc-facts/facts").read_text()
    assert facts == (
        f"kernel={KVER}\nos.id=nestos\nos.version=22.03\ndist=.oe2203sp2\n"
        f"arch={platform.machine()}\n"
    )
    assert filled.stdout == facts.replace("\n", " ") + "left={{nothing}}"


def test_no_kernel_or_two_kernels_leave_the_word_as_written(tmp_path: Path) -> None:
    box = make_root(tmp_path / "box")
    box.write("/hv.sh", HOST_VALUES)
    assert box.sh(". /hv.sh; nc_fill 'k={{kernel}}'").stdout == "k={{kernel}}"
    box.write(f"/usr/lib/modules/{KVER}/vmlinuz", "")
    box.write("/usr/lib/modules/6.6.0/vmlinuz", "")
    assert box.sh(". /hv.sh; nc_fill 'k={{kernel}}'").stdout == "k={{kernel}}"
