"""`promote` and `--undo` against a real registry (Debian's docker-registry), fast: the
images are tiny OCI layouts written here and pushed with skopeo, no podman build.
What the ring serves, what each call returns and journals, and what it refuses."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nestcustom.errors import BadInputError, NestcustomError
from nestcustom.fleet import promote as moves
from nestcustom.fleet.promote import Moved
from nestcustom.fleet.promotetrust import NO_POLICY, Trust
from nestcustom.image import registry as registry_module
from tests.universe.registry import Registry, run_registry

# These images carry no signing policy: promoted without a check, and saying so.
NO_POLICY_CHECK = Trust(False, NO_POLICY)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


def _blob(root: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def push(registry: Registry, tmp: Path, repository: str, content: str) -> str:
    """A one-file image holding `content`, pushed as REPOSITORY:CONTENT; its manifest digest."""
    root = tmp / f"oci-{repository.replace('/', '-')}-{content}"
    (root / "blobs" / "sha256").mkdir(parents=True)
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("f")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content.encode()))
    layer_desc = _blob(root, layer.getvalue())
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
    }
    config_desc = _blob(root, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer_desc}],
    }
    manifest_desc = _blob(root, json.dumps(manifest).encode())
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest_desc}],
    }
    (root / "index.json").write_text(json.dumps(index))
    subprocess.run(
        ["skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{root}",
         f"docker://{registry.host}/{repository}:{content}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(manifest_desc["digest"])


def serving(reference: str) -> str | None:
    done = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
        capture_output=True,
        text=True,
    )
    return str(json.loads(done.stdout)["Digest"]) if done.returncode == 0 else None


def rows(journal: Path) -> list[tuple[str, str, str | None, str, bool]]:
    found = [json.loads(line) for line in journal.read_text().splitlines()]
    return [(r["image"], r["ring"], r["before"], r["after"], r["undo"]) for r in found]


def refusal(call: object, *args: object, **kwargs: object) -> NestcustomError:
    assert callable(call)
    with pytest.raises(NestcustomError) as raised:
        call(*args, **kwargs)
    return raised.value


def test_promote_moves_the_ring_and_undo_moves_it_back(registry: Registry, tmp_path: Path) -> None:
    image = f"{registry.host}/fleet/moves"
    one, two = (
        push(registry, tmp_path, "fleet/moves", "one"),
        push(registry, tmp_path, "fleet/moves", "two"),
    )
    journal = tmp_path / "j" / "promotions.jsonl"
    tag = f"{image}:ring-canary"

    assert moves.promote(f"{image}@{one}", "canary", journal, tls_verify=False) == Moved(
        tag, None, one, changed=True, trust=NO_POLICY_CHECK
    )
    assert serving(tag) == one
    assert moves.promote(f"{image}@{two}", "canary", journal, tls_verify=False) == Moved(
        tag, one, two, changed=True, trust=NO_POLICY_CHECK
    )
    assert serving(tag) == two
    # a re-run says what the ring serves and writes nothing
    assert moves.promote(f"{image}@{two}", "canary", journal, tls_verify=False) == Moved(
        tag, two, two, changed=False
    )
    assert rows(journal) == [
        (image, "canary", None, one, False),
        (image, "canary", one, two, False),
    ]
    assert moves.undo(image, "canary", journal, tls_verify=False) == Moved(
        tag, two, one, changed=True, trust=NO_POLICY_CHECK
    )
    assert serving(tag) == one
    assert serving(f"{image}:two") == two  # the source tag is untouched
    assert rows(journal)[-1] == (image, "canary", two, one, True)
    again = refusal(moves.undo, image, "canary", journal, tls_verify=False)
    assert (again.message, again.hint) == (
        f"ring canary of {image} had no digest before {one}: nothing to go back to",
        f"promote another digest instead: nestcustom promote {image}@DIGEST --ring canary",
    )
    assert serving(tag) == one and len(rows(journal)) == 3


def test_undo_reads_its_own_ring_only(registry: Registry, tmp_path: Path) -> None:
    image = f"{registry.host}/fleet/rings"
    one, two = (
        push(registry, tmp_path, "fleet/rings", "one"),
        push(registry, tmp_path, "fleet/rings", "two"),
    )
    journal = tmp_path / "promotions.jsonl"
    moves.promote(f"{image}@{one}", "stable", journal, tls_verify=False)
    moves.promote(f"{image}@{two}", "stable", journal, tls_verify=False)
    moves.promote(f"{image}@{two}", "canary", journal, tls_verify=False)
    assert moves.undo(image, "stable", journal, tls_verify=False).after == one
    assert serving(f"{image}:ring-canary") == two
    never = refusal(moves.undo, image, "beta", journal, tls_verify=False)
    assert never.message == f"ring beta of {image} has no promotion in the journal"


def test_a_digest_the_registry_does_not_have_is_refused_and_nothing_moves(
    registry: Registry, tmp_path: Path
) -> None:
    image = f"{registry.host}/fleet/absent"
    one = push(registry, tmp_path, "fleet/absent", "one")
    journal = tmp_path / "promotions.jsonl"
    moves.promote(f"{image}@{one}", "stable", journal, tls_verify=False)
    absent = "sha256:" + "0" * 64
    refused = refusal(moves.promote, f"{image}@{absent}", "stable", journal, tls_verify=False)
    assert isinstance(refused, BadInputError)
    assert (refused.message, refused.hint) == (
        f"{image}@{absent} is not in the registry",
        "promote a digest that `nestcustom build --push` printed for this image",
    )
    assert serving(f"{image}:ring-stable") == one
    assert len(rows(journal)) == 1


def test_a_registry_that_serves_another_digest_after_the_move_is_a_failure(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = f"{registry.host}/fleet/rewritten"
    one, two = (
        push(registry, tmp_path, "fleet/rewritten", "one"),
        push(registry, tmp_path, "fleet/rewritten", "two"),
    )
    real_retag = registry_module.retag

    def retag_then_moved_by_another(pinned: str, tag: str, *, tls_verify: bool = True) -> None:
        real_retag(pinned, tag, tls_verify=tls_verify)
        real_retag(f"{image}@{two}", tag, tls_verify=tls_verify)  # someone else, at once

    monkeypatch.setattr(registry_module, "retag", retag_then_moved_by_another)
    journal = tmp_path / "promotions.jsonl"
    failed = refusal(moves.promote, f"{image}@{one}", "stable", journal, tls_verify=False)
    assert (type(failed), failed.message, failed.hint) == (
        NestcustomError,
        f"{image}:ring-stable serves {two} after the move, not {one}",
        "the registry rewrote the manifest; promote by digest on a registry that keeps it",
    )
    assert not journal.exists()  # a move that did not hold is not journalled


def test_a_tag_gone_right_after_the_move_is_a_failure_that_says_so(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = f"{registry.host}/fleet/vanished"
    one = push(registry, tmp_path, "fleet/vanished", "one")
    real_retag = registry_module.retag

    def retag_then_deleted(pinned: str, tag: str, *, tls_verify: bool = True) -> None:
        real_retag(pinned, tag, tls_verify=tls_verify)
        subprocess.run(
            ["skopeo", "delete", "--tls-verify=false", f"docker://{tag}"],
            check=True, capture_output=True,
        )  # fmt: skip

    monkeypatch.setattr(registry_module, "retag", retag_then_deleted)
    journal = tmp_path / "promotions.jsonl"
    failed = refusal(moves.promote, f"{image}@{one}", "stable", journal, tls_verify=False)
    assert failed.message == f"{image}:ring-stable serves nothing after the move, not {one}"
    assert not journal.exists()


def test_tls_is_verified_unless_told_not_to(registry: Registry, tmp_path: Path) -> None:
    """The registry here speaks plain HTTP: with the default, every call refuses it."""
    image = f"{registry.host}/fleet/tls"
    one = push(registry, tmp_path, "fleet/tls", "one")
    journal = tmp_path / "promotions.jsonl"
    for call, args in ((moves.promote, (f"{image}@{one}",)), (moves.undo, (image,))):
        failed = refusal(call, *args, "stable", journal)
        assert failed.message.startswith(f"cannot ask the registry about {image}:ring-stable: ")
        assert "level=fatal" not in failed.message  # skopeo's message, not its log line
        assert "http: server gave HTTP response to HTTPS client" in failed.message
    assert serving(f"{image}:ring-stable") is None
    moves.promote(f"{image}@{one}", "stable", journal, tls_verify=False)
    failed = refusal(moves.undo, image, "stable", journal)
    assert failed.message.startswith(f"cannot ask the registry about {image}:ring-stable: ")
    # the ring is read with verification too, before the journal is asked about it
    failed = refusal(moves.undo, image, "canary", journal)
    assert failed.message.startswith(f"cannot ask the registry about {image}:ring-canary: ")


def test_undo_checks_its_arguments_before_the_registry(tmp_path: Path) -> None:
    journal = tmp_path / "promotions.jsonl"
    bad_image = refusal(moves.undo, "agent", "stable", journal)
    assert (bad_image.message, bad_image.hint) == (
        "'agent' is not an image name in a registry",
        "REGISTRY/PATH without a tag, e.g. registry.example.com/nestos/agent",
    )
    bad_ring = refusal(moves.undo, "127.0.0.1:1/x/agent", "Stable", journal)
    assert bad_ring.message == "'Stable' is not a ring name"
    journal.write_text("{oops\n")
    damaged = refusal(moves.undo, "127.0.0.1:1/x/agent", "stable", journal)
    assert (
        damaged.message
        == f"{journal}:1:2: not JSON: Expecting property name enclosed in double quotes"
    )


def nestcustom(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nestcustom", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_command_says_each_move(registry: Registry, tmp_path: Path) -> None:
    image = f"{registry.host}/fleet/cli"
    one, two = (
        push(registry, tmp_path, "fleet/cli", "one"),
        push(registry, tmp_path, "fleet/cli", "two"),
    )
    promote = ("promote", "--no-tls-verify", "--ring", "canary")
    first = nestcustom(*promote, f"{image}@{one}", cwd=tmp_path)
    assert (first.returncode, first.stdout, first.stderr) == (
        0,
        f"{image}:ring-canary: (new) -> {one}\n",
        f"signature: {NO_POLICY}\njournalled in promotions.jsonl\n",
    )
    second = nestcustom(*promote, f"{image}@{two}", "--json", cwd=tmp_path)
    assert second.returncode == 0
    assert json.loads(second.stdout) == {
        "ok": True,
        "command": "promote",
        "exit_code": 0,
        "ring": "canary",
        "tag": f"{image}:ring-canary",
        "before": one,
        "after": two,
        "changed": True,
        "journal": "promotions.jsonl",
        "signature": {"verified": False, "note": NO_POLICY, "fingerprint": None, "url": None},
    }
    back = nestcustom(*promote, image, "--undo", cwd=tmp_path)
    assert (back.returncode, back.stdout) == (0, f"{image}:ring-canary: {two} -> {one}\n")
    pinned_undo = nestcustom(*promote, f"{image}@{one}", "--undo", "--json", cwd=tmp_path)
    assert pinned_undo.returncode == 2
    error = json.loads(pinned_undo.stdout)["error"]
    assert (error["message"], error["hint"]) == (
        "--undo takes IMAGE without a digest: the journal says where the ring goes back to",
        f"nestcustom promote {image} --ring canary --undo",
    )
