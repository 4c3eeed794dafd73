"""The fleet's host emulator imports an image's layers as ostree-ext does (contract section
6), so what the fleet tests count is what a host would download: a layer the host holds
is not fetched again, whichever image brought it; rpm-ostree's counts are printed; 2022.16
drops the layers no deployment uses after a rebase, 2022.8 keeps every one.

The emulator runs here (as in test_hostkargs_reach.py) with its state under the test's
directory; the images are pushed by HTTP to a real registry, whose access log says which
blobs were really read."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nestcustom.image.distribution import Repository
from tests.image.pushing import Pushed, layer, push_layers
from tests.universe.registry import Registry, run_registry

EMULATOR = Path(__file__).parents[1] / "universe" / "fleet" / "emulator"
OCI = "application/vnd.oci.image.manifest.v1+json"
# The emulator, its state and the files it keeps under the test's directory.
WRAPPER = """#!{python}
import sys
from pathlib import Path
sys.path.insert(0, {emulator!r})
import imagefiles, kargs_host, layers, trustfiles
import rpm_ostree_host as emu
state = Path({state!r})
emu.STATE = state / "deployments.json"
emu.FAULTS = state / "faults"
emu.VERSION_FILE = state / "version"
emu.STAGED_LOCKED = state / "staged-locked"
emu.REGISTRIES_D = state / "registries.conf.d"
emu.AUTH = state / "auth.json"
layers.ORIGIN_LAYERS = trustfiles.ORIGIN_LAYERS = imagefiles.ORIGIN_LAYERS = state / "origin-layers"
layers.STORE = state / "blob-refs"
layers.FETCHED = state / "fetched"
trustfiles.ROOT = state / "trust"
imagefiles.ROOT = state / "imagefiles"
kargs_host.LAYER_CACHE = state / "kargs-cache"
# A boot here changes only the records: no files put on this machine.
emu.CMDLINE = state / "cmdline"
emu.KARGS_D = state / "kargs.d"
trustfiles.boot = imagefiles.boot = lambda checksum: None
sys.exit(emu.main(sys.argv[1:]))
"""


BASE = [layer({"usr/lib/os-release": b"NAME=NestOS\n"}), layer({"usr/bin/base": b"b" * 3000})]
STRACE = layer({"usr/bin/strace": b"s" * 5000})
JQ = layer({"usr/bin/jq": b"j" * 2000})
HELLO = layer({"usr/bin/hello": b"h" * 1500})


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="module")
def images(registry: Registry) -> dict[str, Pushed]:
    return {
        "base": push_layers(registry, "fleet/layers", "base", BASE, {}),
        # v1: strace, jq; v2: hello added first, strace and jq unchanged; v3: jq only.
        "v1": push_layers(registry, "fleet/layers", "v1", [*BASE, STRACE, JQ], {"version": "1"}),
        "v2": push_layers(
            registry, "fleet/layers", "v2", [*BASE, HELLO, STRACE, JQ], {"version": "2"}
        ),
        "v3": push_layers(registry, "fleet/layers", "v3", [*BASE, JQ], {"version": "3"}),
    }


@dataclass(frozen=True)
class Host:
    tool: Path
    state: Path
    registry: Registry
    log_start: int  # the registry's log before this host: other tests read the same blobs

    def rpm_ostree(self, *args: str) -> str:
        done = subprocess.run([str(self.tool), *args], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def fetched(self) -> list[str]:
        log = self.state / "fetched"
        return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []

    def held(self) -> set[str]:
        store = self.state / "blob-refs"
        return {p.name.replace("-", ":", 1) for p in store.iterdir()} if store.is_dir() else set()

    def boot(self) -> None:
        self.rpm_ostree("boot-hook")

    def registry_reads(self, digest: str) -> int:
        """GETs of the blob the registry answered, from its access log."""
        with self.registry.log.open("rb") as log:
            log.seek(self.log_start)
            lines = log.read().decode(errors="replace").splitlines()
        return sum(
            1
            for line in lines
            if f'"GET /v2/fleet/layers/blobs/{digest} ' in line and '" 200 ' in line
        )


def make_host(tmp: Path, registry: Registry, origin: Pushed | None, version: str) -> Host:
    state = tmp / "state"
    (state / "registries.conf.d").mkdir(parents=True)
    (state / "registries.conf.d" / "test.conf").write_text(
        f'[[registry]]\nlocation = "{registry.host}"\ninsecure = true\n'
    )
    (state / "version").write_text(version)
    if origin is not None:
        (state / "origin-layers").write_text("\n".join(origin.layers))
    tool = tmp / "rpm-ostree"
    tool.write_text(WRAPPER.format(python=sys.executable, emulator=str(EMULATOR), state=str(state)))
    tool.chmod(0o755)
    return Host(tool, state, registry, registry.log.stat().st_size)


def rebase(host: Host, image: Pushed) -> str:
    return host.rpm_ostree("rebase", f"ostree-unverified-registry:{image.reference}")


def test_a_host_fetches_only_the_layers_it_does_not_hold(
    tmp_path: Path, registry: Registry, images: dict[str, Pushed]
) -> None:
    host = make_host(tmp_path, registry, images["base"], "2022.16")
    v1, v2 = images["v1"], images["v2"]
    out = rebase(host, v1)
    assert "ostree chunk layers stored: 1 needed: 0 (0 bytes)" in out
    assert f"custom layers stored: 1 needed: 2 ({_size(v1.sizes[2] + v1.sizes[3])})" in out
    assert f"Fetching layer {v1.layers[2][:19]} ({_size(v1.sizes[2])})" in out
    assert f"Fetched layer {v1.layers[3][:19]}" in out
    assert host.fetched() == [v1.layers[2], v1.layers[3]]
    host.boot()

    out = rebase(host, v2)  # hello added below strace and jq: only hello is new
    assert f"custom layers stored: 3 needed: 1 ({_size(v2.sizes[2])})" in out
    assert host.fetched() == [v1.layers[2], v1.layers[3], v2.layers[2]]
    # The registry agrees: each custom layer was read once over both rebases (the trust
    # files, unit files and kargs.d read from the held copy). An origin layer is read once
    # for the kargs.d the emulator keeps, which a host has from its install.
    assert [host.registry_reads(d) for d in v2.layers] == [1, 1, 1, 1, 1]


def test_a_held_layer_is_reused_from_any_tag(
    tmp_path: Path, registry: Registry, images: dict[str, Pushed]
) -> None:
    host = make_host(tmp_path, registry, images["base"], "2022.16")
    rebase(host, images["v3"])  # jq
    host.boot()
    out = rebase(host, images["v1"])  # strace, jq: jq came with v3
    assert "custom layers stored: 2 needed: 1" in out
    assert host.fetched() == [images["v3"].layers[2], images["v1"].layers[2]]


def test_the_final_diffid_label_ends_the_chunks(tmp_path: Path, registry: Registry) -> None:
    """ostree-ext 0.9.1: the layers up to the one `ostree.final-diffid` names are the
    commit and its chunks; every later one is a derived (custom) layer."""
    final = "sha256:" + hashlib.sha256(gzip.decompress(BASE[1])).hexdigest()
    chunked = push_layers(
        registry, "fleet/layers", "chunked", [*BASE, STRACE], {"ostree.final-diffid": final}
    )
    host = make_host(
        tmp_path, registry, push_layers(registry, "fleet/layers", "base", BASE, {}), "2022.16"
    )
    out = rebase(host, chunked)
    assert "ostree chunk layers stored: 2 needed: 0 (0 bytes)" in out
    assert "custom layers stored: 0 needed: 1" in out


def test_nothing_held_is_fetched_again_nor_printed_without_an_origin(
    tmp_path: Path, registry: Registry, images: dict[str, Pushed]
) -> None:
    """A host whose origin the harness did not say models no layers (as no trust files)."""
    host = make_host(tmp_path, registry, None, "2022.16")
    out = rebase(host, images["v1"])
    assert "layers stored" not in out and host.fetched() == []


@pytest.mark.parametrize(("version", "kept"), [("2022.16", False), ("2022.8", True)])
def test_layers_no_deployment_uses_are_dropped_after_a_rebase_from_2022_16(
    tmp_path: Path, registry: Registry, images: dict[str, Pushed], version: str, kept: bool
) -> None:
    host = make_host(tmp_path, registry, images["base"], version)
    extra = ("--experimental",) if version == "2022.8" else ()
    v1, v2, v3 = images["v1"], images["v2"], images["v3"]
    for image in (v1, v2, v3):
        host.rpm_ostree("rebase", *extra, f"ostree-unverified-registry:{image.reference}")
        host.boot()
    hello = v2.layers[2]  # only v2 has it
    # Booted v3, rollback v2; rebasing to v1 keeps v2 deployed (as the rollback).
    host.rpm_ostree("rebase", *extra, f"ostree-unverified-registry:{v1.reference}")
    assert hello in host.held()
    host.boot()
    # Booted v1, rollback v3: after this rebase no deployment is v2.
    host.rpm_ostree("rebase", *extra, f"ostree-unverified-registry:{v3.reference}")
    assert (hello in host.held()) is kept
    assert set(v1.layers[2:]) <= host.held()


def test_an_upgrade_fetches_as_a_rebase_does(
    tmp_path: Path, registry: Registry, images: dict[str, Pushed]
) -> None:
    host = make_host(tmp_path, registry, images["base"], "2022.16")
    v1, v2 = images["v1"], images["v2"]
    repo = Repository(f"{registry.host}/fleet/layers", tls_verify=False)
    manifest, media_type = repo.manifest("v1")
    repo.put_manifest("moving", manifest, media_type)
    host.rpm_ostree("rebase", f"ostree-unverified-registry:{registry.host}/fleet/layers:moving")
    host.boot()
    manifest, media_type = repo.manifest("v2")
    repo.put_manifest("moving", manifest, media_type)
    out = host.rpm_ostree("upgrade")
    assert "custom layers stored: 3 needed: 1" in out
    assert host.fetched() == [v1.layers[2], v1.layers[3], v2.layers[2]]


def _size(n: int) -> str:
    """glib's format_size, as rpm-ostree prints it."""
    return f"{n} bytes" if n < 1000 else f"{n / 1000:.1f} kB"
