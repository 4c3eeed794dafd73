"""Hosts prove signatures themselves before a rebase (issue 23, items 3 and 4), with the real
containers/image verification on the test hosts (Debian's skopeo and gpg): a signed image is
accepted; an unsigned one, another key's, a manifest changed after signing, a ring tag moved
to an unsigned digest and a host policy that accepts anything are refused before anything is
staged; a host that trusts nothing yet gets its first signed image only with
--bootstrap-trust, and verifies every one after it; `status` says which hosts follow a
verified reference; both skopeo behaviours (proxy enforcing policy.json or not) are modelled."""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import ORIGIN, FleetFactory, digest_of, nestcustom, podman, report
from tests.universe.fleet.harness import TestHost
from tests.universe.httpserve import QuietHTTPServer
from tests.universe.registry import Registry

pytestmark = [pytest.mark.universe, pytest.mark.hosts]


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = QuietHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Signed:
    repo: str  # REG/signed/nestos
    refs: dict[str, str]  # name -> pinned REPO@DIGEST
    keys: dict[str, Path]
    lookaside: Path
    url: str
    origin_layers: tuple[str, ...]


def sign_build(project: Path, name: str, tag: str, key: Path, store: Path) -> str:
    result = nestcustom(
        project,
        "build",
        f"recipes/{name}.yaml",
        "--tag",
        tag,
        "--push",
        "--no-tls-verify",
        "--sign",
        str(key),
        "--signature-store",
        f"file://{store}",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["images"][0]["pinned"])


@pytest.fixture(scope="module")
def signed(
    registry: Registry, nestos_sp2_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Signed]:
    root = tmp_path_factory.mktemp("signed")
    keys = {}
    for name in ("site", "other"):
        made = nestcustom(root, "keys", "generate", str(root / name), "--no-passphrase")
        assert made.returncode == 0, made.stderr
        keys[name] = root / name / "signing-key.asc"
        keys[name + ".pub"] = root / name / "signing-key.pub.asc"
    lookaside = root / "lookaside"
    lookaside.mkdir()
    repo = f"{registry.host}/signed/nestos"
    project = root / "project"
    (project / "recipes").mkdir(parents=True)
    (project / "files").mkdir()
    shutil.copy(keys["site.pub"], project / "files" / "site.pub.asc")
    with serve(lookaside) as url:
        refs = {}
        for version, default in (
            ("v1", "accept"),
            ("v2", "accept"),
            ("strict", "reject"),
            ("other", "accept"),
        ):
            (project / "files" / version).write_text(f"{version}\n")
            (project / "recipes" / f"{version}.yaml").write_text(
                f"name: {version}\nbase: {{image: '{nestos_sp2_image}'}}\n"
                f"files: [{{src: files/{version}, dest: /usr/share/nc-version}}]\n"
                f"signing:\n  default: {default}\n  scopes:\n"
                f"    - {{scope: {registry.host}/signed, key: files/site.pub.asc, lookaside: '{url}'}}\n"
            )
            # "other" is signed by another key only
            key = keys["other" if version == "other" else "site"]
            refs[version] = sign_build(project, version, f"{repo}:{version}", key, lookaside)
        # An unsigned image in the same repository, and the ring tag moved to it.
        context = root / "unsigned"
        context.mkdir()
        (context / "Containerfile").write_text(
            f"FROM {nestos_sp2_image}\nRUN echo unsigned > /usr/share/nc-version\n"
        )
        podman("build", "-q", "-t", f"{repo}:ring", str(context))
        podman("push", "-q", "--tls-verify=false", f"{repo}:ring")
        refs["ring"] = f"{repo}:ring"
        # v2's manifest changed after signing, its signature copied next to it.
        manifest = json.loads(
            subprocess.run(
                ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{refs['v2']}"],
                capture_output=True,
                check=True,
            ).stdout
        )
        manifest["annotations"] = {"changed": "after signing"}
        body = json.dumps(manifest).encode()
        request = urllib.request.Request(
            f"http://{registry.host}/v2/signed/nestos/manifests/tampered",
            data=body,
            method="PUT",
            headers={"Content-Type": manifest["mediaType"]},
        )
        with urllib.request.urlopen(request) as answer:
            tampered = answer.headers["Docker-Content-Digest"]
        signature = lookaside / f"signed/nestos@sha256={refs['v2'].split(':')[-1]}"
        shutil.copytree(signature, lookaside / f"signed/nestos@sha256={tampered.split(':')[1]}")
        refs["tampered"] = f"{repo}@{tampered}"
        # The base the hosts were installed from, as the registry has its layers.
        origin = f"{registry.host}/signed/origin:base"
        podman("tag", nestos_sp2_image, origin)
        podman("push", "-q", "--tls-verify=false", origin)
        layers = json.loads(
            subprocess.run(
                ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{origin}"],
                capture_output=True,
                check=True,
            ).stdout
        )["layers"]
        yield Signed(repo, refs, keys, lookaside, url, tuple(layer["digest"] for layer in layers))
    for name in ("v1", "v2", "strict", "other", "ring"):
        podman("rmi", "-f", f"{repo}:{name}")


def trust_site(host: TestHost, signed: Signed, default: str = "insecureAcceptAnything") -> None:
    """The host trusts the site's key for REG/signed, as an image with its signing: would."""
    scope = signed.repo.rsplit("/", 1)[0]
    host.write("/etc/pki/containers/site.asc", signed.keys["site.pub"].read_text())
    host.write(
        "/etc/containers/policy.json",
        json.dumps(
            {
                "default": [{"type": default}],
                "transports": {
                    "docker": {
                        scope: [
                            {
                                "type": "signedBy",
                                "keyType": "GPGKeys",
                                "keyPath": "/etc/pki/containers/site.asc",
                            }
                        ]
                    }
                },
            }
        ),
    )
    host.write(
        "/etc/containers/registries.d/site.yaml",
        f"docker:\n  {scope}:\n    lookaside: {signed.url}\n",
    )


def deploy(cwd: Path, inventory: Path, ref: str, *extra: str) -> dict[str, dict[str, Any]]:
    result = nestcustom(
        cwd, "deploy", "-i", str(inventory), ref, "--no-tls-verify", "--json", *extra
    )
    return report(result)


def staged(host: TestHost) -> list[str]:
    return [d["id"] for d in host.status()["deployments"] if d["staged"]]


def test_hosts_verify_signatures_and_refuse_every_bad_image_before_staging(
    fleet: FleetFactory, signed: Signed, tmp_path: Path
) -> None:
    hosts = fleet(2)
    trusting, open_host = hosts.hosts
    trust_site(trusting, signed)
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    good = deploy(tmp_path, inventory, signed.refs["v1"], "--hosts", "host1")["host1"]
    assert good["outcome"] == "updated", (good["error"], good["steps"])
    assert str(good["trust"]).startswith("verified on the host: signature-1 by ")
    steps = {s["step"]: s["detail"] for s in good["steps"]}
    assert (
        "rebasing with ostree-unverified-registry: (skopeo 1.9 does not enforce policy)"
        in steps["trust"]
    )
    v1 = digest_of(signed.refs["v1"])
    assert trusting.booted_digest() == v1
    for name, expected in (
        ("ring", "has no signature at"),  # a ring tag moved to an unsigned digest
        ("other", "none verifies"),  # signed, by another key
        ("tampered", "none verifies"),  # the manifest changed after signing
    ):
        row = deploy(tmp_path, inventory, signed.refs[name], "--hosts", "host1")["host1"]
        assert (row["outcome"], row["failure"]) == ("failed", "untrusted"), (name, row)
        assert expected in str(row["error"]), (name, row["error"])
        assert row["rolled_back"] is False and staged(trusting) == [], name
        assert trusting.booted_digest() == v1, name
    # A host whose policy accepts anything for the repository: refused, it cannot verify.
    row = deploy(tmp_path, inventory, signed.refs["v2"], "--hosts", "host2")["host2"]
    assert (row["outcome"], row["failure"]) == ("failed", "untrusted")
    assert "accepts any image of" in str(row["error"]) and "--bootstrap-trust" in str(row["hint"])
    assert staged(open_host) == [] and open_host.booted_digest() is None
    # --unsigned deploys anyway, and says so loudly.
    loud = nestcustom(
        tmp_path,
        "deploy",
        "-i",
        str(inventory),
        signed.refs["ring"],
        "--hosts",
        "host1",
        "--no-tls-verify",
        "--unsigned",
    )
    assert loud.returncode == 0, loud.stderr
    assert (
        "warning: --unsigned: signatures are NOT checked on any host" not in loud.stderr
    )  # no label
    assert "trust: NOT verified (--unsigned)" in loud.stdout
    listed = nestcustom(tmp_path, "status", "-i", str(inventory), "--json")
    rows = {r["host"]: r for r in json.loads(listed.stdout)["hosts"]}
    assert rows["host1"]["verified"] is False and rows["host1"]["verification"] == "unverified"
    again = deploy(tmp_path, inventory, signed.refs["v2"], "--hosts", "host1")["host1"]
    assert again["outcome"] == "updated", again
    listed = nestcustom(tmp_path, "status", "-i", str(inventory))
    assert "  verified: yes (signature verified by nestcustom deploy (key " in listed.stdout
    assert "  verified: NO (unverified)" in listed.stdout  # host2, on its origin


def test_a_host_that_trusts_nothing_yet_is_bootstrapped_then_verifies(
    fleet: FleetFactory, signed: Signed, tmp_path: Path
) -> None:
    hosts = fleet(1, origin_layers=signed.origin_layers)
    host = hosts.hosts[0]
    inventory = hosts.inventory(tmp_path / "hosts.yaml")
    refused = deploy(tmp_path, inventory, signed.refs["v1"])["host1"]
    assert (refused["outcome"], refused["failure"]) == ("failed", "untrusted")
    assert "--bootstrap-trust" in str(refused["hint"]) and host.booted_digest() is None
    first = deploy(tmp_path, inventory, signed.refs["v1"], "--bootstrap-trust")["host1"]
    assert first["outcome"] == "updated", first
    assert str(first["trust"]).startswith("bootstrapped: the host accepts any image of")
    assert "NOT verified" in str(first["trust"])
    # The image it booted brought its policy, key and lookaside: from now on it verifies.
    policy = json.loads(host.read("/etc/containers/policy.json") or "{}")
    assert policy["transports"]["docker"][signed.repo.rsplit("/", 1)[0]][0]["type"] == "signedBy"
    listed = nestcustom(tmp_path, "status", "-i", str(inventory), "--json")
    assert (
        json.loads(listed.stdout)["hosts"][0]["verification"] == "trust bootstrapped: NOT verified"
    )
    second = deploy(tmp_path, inventory, signed.refs["v2"])["host1"]
    assert second["outcome"] == "updated", second
    assert str(second["trust"]).startswith("verified on the host")
    unsigned = deploy(tmp_path, inventory, signed.refs["ring"])["host1"]
    assert unsigned["failure"] == "untrusted" and staged(host) == []
    assert host.booted_digest() == digest_of(signed.refs["v2"])


def test_both_skopeo_behaviours_and_ostree_image_signed_where_the_proxy_enforces(
    fleet: FleetFactory, signed: Signed, tmp_path: Path
) -> None:
    hosts = fleet(2, skopeo={"host1": "1.13.0"})
    enforcing, old = hosts.hosts
    for host in hosts.hosts:
        trust_site(host, signed, default="reject")
    unsigned = f"{signed.repo}@{digest_of(signed.refs['ring'])}"
    # rpm-ostree alone: skopeo 1.13's proxy refuses the unsigned image (containers/image's
    # own policy check); an older skopeo accepts it without a word (contract section 4).
    enforcing.exec("rpm-ostree", "rebase", "ostree-image-signed:docker://" + unsigned, check=False)
    assert staged(enforcing) == []
    done = subprocess.run(
        [
            "podman",
            "exec",
            enforcing.container,
            "rpm-ostree",
            "rebase",
            "ostree-image-signed:docker://" + unsigned,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "Source image rejected" in done.stderr, done.stderr
    old.exec("rpm-ostree", "rebase", "ostree-image-signed:docker://" + unsigned)
    assert len(staged(old)) == 1
    old.exec("rpm-ostree", "cleanup", "-p")
    # nestcustom: verified on both; rpm-ostree checks once more where its skopeo enforces.
    rows = deploy(
        tmp_path,
        hosts.inventory(tmp_path / "hosts.yaml"),
        signed.refs["strict"],
        "--batch",
        "2",
    )
    assert {h: r["outcome"] for h, r in rows.items()} == {"host1": "updated", "host2": "updated"}, (
        rows["host1"]["error"]
    )
    booted = {
        h.name: next(d for d in h.status()["deployments"] if d["booted"]) for h in hosts.hosts
    }
    assert (
        booted["host1"]["container-image-reference"]
        == f"ostree-image-signed:docker://{signed.refs['strict']}"
    )
    assert (
        booted["host2"]["container-image-reference"]
        == f"ostree-unverified-registry:{signed.refs['strict']}"
    )
    listed = nestcustom(
        tmp_path, "status", "-i", str(hosts.inventory(tmp_path / "h.yaml")), "--json"
    )
    verification = {r["host"]: r["verification"] for r in json.loads(listed.stdout)["hosts"]}
    assert verification["host1"] == "ostree-image-signed: (rpm-ostree checks it)"
    assert verification["host2"].startswith("signature verified by nestcustom deploy")
    assert ORIGIN  # the hosts started on their ostree origin
