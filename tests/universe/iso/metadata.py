"""The DVD's repository metadata: comps, modules, .treeinfo, and createrepo_c over a tree.

EL8 DVDs carry comps (groups such as @core) in BaseOS and modular metadata
(modules.yaml with defaults) in AppStream; EL7-style trees one repository at
the root and an old .treeinfo without variants.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

TIMESTAMP = 1699617600  # 2023-11-10 12:00 UTC: the ISO's build time

CORE_MANDATORY = (
    "filesystem",
    "setup",
    "newstart-release",
    "newstart-rpm-config",
    "bash",
    "coreutils",
    "libc-bin",
    "rpm",
    "dnf",
    "systemd",
    "passwd",
    "mount",
    "procps",
    "grep",
    "sed",
    "findutils",
    "tar",
    "gzip",
    "libcap2-bin",
    "nc-owned",
)
CORE_DEFAULT = ("less",)
CORE_OPTIONAL = ("strace",)


def _run(argv: Sequence[str]) -> None:
    done = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-3000:]}")


def comps_xml() -> str:
    def reqs(kind: str, names: Sequence[str]) -> str:
        return "".join(f'      <packagereq type="{kind}">{n}</packagereq>\n' for n in names)

    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">\n'
        "<comps>\n"
        "  <group>\n    <id>core</id>\n    <name>Core</name>\n"
        "    <description>Smallest possible installation</description>\n"
        "    <default>true</default>\n    <uservisible>false</uservisible>\n"
        "    <packagelist>\n"
        + reqs("mandatory", CORE_MANDATORY)
        + reqs("default", CORE_DEFAULT)
        + reqs("optional", CORE_OPTIONAL)
        + "    </packagelist>\n  </group>\n"
        "  <group>\n    <id>debugging</id>\n    <name>Debugging Tools</name>\n"
        "    <description>Tools for debugging misbehaving programs</description>\n"
        "    <default>false</default>\n    <uservisible>true</uservisible>\n"
        "    <packagelist>\n"
        + reqs("mandatory", ("strace",))
        + reqs("default", ("jq",))
        + "    </packagelist>\n  </group>\n</comps>\n"
    )


def modules_yaml(hello: dict[str, str]) -> str:
    """nc-hello as a module with streams 1 (default) and 2, as EL8 AppStream ships them."""
    docs = []
    for stream, nvra in sorted(hello.items()):
        evr = nvra.removeprefix("nc-hello-").rsplit(".", 1)[0]
        docs.append(
            "---\ndocument: modulemd\nversion: 2\ndata:\n"
            f'  name: nc-hello\n  stream: "{stream}"\n  version: 8060020230101{stream}\n'
            "  context: 9edba152\n  arch: x86_64\n"
            f"  summary: nc-hello {stream}\n  description: The hello program, stream {stream}.\n"
            "  license:\n    module: [MIT]\n"
            "  dependencies:\n  - buildrequires:\n      platform: [el8]\n    requires:\n      platform: [el8]\n"
            "  profiles:\n    common:\n      rpms: [nc-hello]\n"
            f"  artifacts:\n    rpms:\n    - nc-hello-0:{evr}.noarch\n...\n"
        )
    docs.append(
        "---\ndocument: modulemd-defaults\nversion: 1\ndata:\n"
        '  module: nc-hello\n  stream: "1"\n  profiles:\n    "1": [common]\n    "2": [common]\n...\n'
    )
    return "".join(docs)


def treeinfo(layout: str) -> str:
    if layout == "flat":  # EL7 style: no variants
        return (
            "[general]\nfamily = NewStart CGS Linux\nname = NewStart CGS Linux 5.05\n"
            f"version = 6.06\narch = x86_64\ntimestamp = {TIMESTAMP}\npackagedir = Packages\n"
        )
    variants = "".join(
        f"[variant-{v}]\nid = {v}\nname = {v}\npackages = {v}/Packages\n"
        f"repository = {v}\ntype = variant\nuid = {v}\n\n"
        for v in ("AppStream", "BaseOS")
    )
    return (
        "[header]\ntype = productmd.treeinfo\nversion = 1.2\n\n"
        "[release]\nname = NewStart CGS Linux\nshort = NewStart\nversion = 6.06\n\n"
        f"[general]\nfamily = NewStart CGS Linux\nversion = 6.06\narch = x86_64\n"
        f"timestamp = {TIMESTAMP}\nvariant = BaseOS\npackagedir = BaseOS/Packages\n"
        "repository = BaseOS\n\n"
        f"[tree]\narch = x86_64\nbuild_timestamp = {TIMESTAMP}\nplatforms = x86_64\n"
        "variants = AppStream,BaseOS\n\n" + variants
    )


def createrepo(repo: Path, comps: str | None = None, modules: str | None = None) -> None:
    argv = ["createrepo_c", "--quiet", "--no-database", "--revision", str(TIMESTAMP)]
    if comps:
        (repo.parent / f"{repo.name}-comps.xml").write_text(comps)
        argv += ["-g", str(repo.parent / f"{repo.name}-comps.xml")]
    _run([*argv, str(repo)])
    if modules:
        path = repo.parent / "modules.yaml"
        path.write_text(modules)
        _run(["modifyrepo_c", "--mdtype=modules", str(path), str(repo / "repodata")])
