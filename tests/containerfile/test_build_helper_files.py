"""The build helper's `files` sub-command in a throwaway root: what each option leaves in
the image (content, mode, owner, links), and the errors a step stops with."""

from __future__ import annotations

import gzip
import hashlib
import io
import stat
import tarfile
from pathlib import Path

from tests.universe.helper_root import HelperRoot


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_copy_places_a_file_with_its_mode_and_owner_making_parents(box: HelperRoot) -> None:
    box.write("/run/src/agent.conf", "level=debug\n", mode=0o600)
    done = box.helper(
        "files", "--copy", "/run/src/agent.conf", "/etc/agent/conf.d/agent.conf", "0640", "ncsvc:ncsvc",
        "--copy", "/run/src/agent.conf", "/usr/share/agent/default.conf", "0644", "-",
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    placed = box.path("/etc/agent/conf.d/agent.conf")
    assert placed.read_text() == "level=debug\n"
    assert (mode(placed), placed.stat().st_uid, placed.stat().st_gid) == (0o640, 990, 990)
    other = box.path("/usr/share/agent/default.conf")
    assert (other.read_text(), mode(other), other.stat().st_uid) == ("level=debug\n", 0o644, 0)


def test_copy_of_a_missing_source_stops_the_step(box: HelperRoot) -> None:
    done = box.helper(
        "files", "--copy", "/run/src/none", "/etc/a", "0644", "-", "--dir", "/etc/later", "0755"
    )
    assert done.returncode == 1
    assert "/run/src/none" in done.stderr
    assert not box.path("/etc/later").exists()  # nothing after the failure ran


def test_tree_copies_contents_links_as_links_and_owns_every_file(box: HelperRoot) -> None:
    box.write("/run/tree/bin/tool", "#!/bin/sh\n", mode=0o755)
    box.write("/run/tree/share/data.txt", "data\n")
    (box.root / "run/tree/bin/alias").symlink_to("tool")
    box.write("/opt/agent/old.txt", "kept\n")
    done = box.helper("files", "--tree", "/run/tree", "/opt/agent", "ncsvc:ncsvc")
    assert (done.returncode, done.stderr) == (0, "")
    top = box.path("/opt/agent")
    assert sorted(str(p.relative_to(top)) for p in top.rglob("*")) == [
        "bin", "bin/alias", "bin/tool", "old.txt", "share", "share/data.txt",
    ]  # fmt: skip
    assert (top / "bin/alias").is_symlink() and str((top / "bin/alias").readlink()) == "tool"
    assert mode(top / "bin/tool") == 0o755 and mode(top / "share/data.txt") == 0o644
    owners = {p.lstat().st_uid for p in [top, *top.rglob("*")] if p.name != "old.txt"}
    assert owners == {990}
    assert (top / "bin/alias").lstat().st_uid == 990  # the link itself, not its target


def test_tree_owned_by_root_is_left_to_root(box: HelperRoot) -> None:
    box.write("/run/tree/a", "a\n")
    done = box.helper("files", "--tree", "/run/tree", "/etc/tree", "-")
    assert done.returncode == 0
    assert box.path("/etc/tree/a").stat().st_uid == 0


def test_copy_owner_applies_to_a_link_itself_never_its_target(box: HelperRoot) -> None:
    box.write("/etc/target.conf", "x\n")
    (box.root / "run").mkdir(exist_ok=True)
    (box.root / "run/link").symlink_to("/etc/target.conf")
    done = box.helper("files", "--link", "/etc/alias.conf", "/etc/target.conf")
    assert done.returncode == 0
    done = box.helper("exec", "chown", "-h", "ncsvc", "/etc/alias.conf")
    assert done.returncode == 0
    assert box.path("/etc/target.conf").stat().st_uid == 0


def test_dir_makes_parents_and_sets_the_mode_of_the_last(box: HelperRoot) -> None:
    done = box.helper("files", "--dir", "/etc/agent/secrets", "0700", "--dir", "/var/x", "1777")
    assert (done.returncode, done.stderr) == (0, "")
    assert mode(box.path("/etc/agent/secrets")) == 0o700
    assert mode(box.path("/etc/agent")) == 0o755
    assert mode(box.path("/var/x")) == 0o1777


def test_remove_takes_files_and_whole_trees(box: HelperRoot) -> None:
    box.write("/etc/motd", "hi\n")
    box.write("/usr/share/doc/agent/README", "r\n")
    box.write("/usr/share/doc/agent/sub/more", "m\n")
    done = box.helper(
        "files", "--remove", "/etc/motd", "--remove", "/usr/share/doc/agent", "--remove", "/nothing"
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert not box.path("/etc/motd").exists()
    assert box.sh("test -e /usr/share/doc/agent || echo gone").stdout == "gone\n"


def test_link_makes_its_parent_and_replaces_an_old_link(box: HelperRoot) -> None:
    done = box.helper(
        "files", "--link", "/etc/agent/current", "/usr/lib/agent/v1",
        "--link", "/etc/agent/current", "/usr/lib/agent/v2",
        "--link", "/etc/-dash", "-x",
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    link = box.path("/etc/agent/current")
    assert link.is_symlink() and str(link.readlink()) == "/usr/lib/agent/v2"
    assert str(box.path("/etc/-dash").readlink()) == "-x"  # `--` keeps it a name


def test_a_link_over_a_directory_link_replaces_the_link(box: HelperRoot) -> None:
    (box.root / "etc/dir-a").mkdir()
    (box.root / "etc/dir-b").mkdir()
    (box.root / "etc/current").symlink_to("dir-a")
    done = box.helper("files", "--link", "/etc/current", "dir-b")
    assert done.returncode == 0
    assert str(box.path("/etc/current").readlink()) == "dir-b"
    assert not (box.root / "etc/dir-a/dir-b").exists()  # -n: not a link inside dir-a


def test_unknown_option(box: HelperRoot) -> None:
    done = box.helper("files", "--dir", "/etc/a", "0755", "--chmod", "x")
    assert (done.returncode, done.stderr) == (1, "nestcustom: files: unknown option --chmod\n")
    assert box.path("/etc/a").is_dir()


def served(box: HelperRoot, name: str, content: bytes) -> tuple[str, str]:
    """A download as a file:// URL curl fetches inside the root, and its sha256."""
    path = box.root / "srv" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return f"file:///srv/{name}", hashlib.sha256(content).hexdigest()


def test_fetch_places_a_checked_download_with_its_mode(box: HelperRoot) -> None:
    url, sha = served(box, "tool", b"#!/bin/sh\necho tool\n")
    done = box.helper("files", "--fetch", url, sha, "/usr/local/bin/tool", "0755", "-")
    assert (done.returncode, done.stderr) == (0, "")
    tool = box.path("/usr/local/bin/tool")
    assert (tool.read_bytes(), mode(tool)) == (b"#!/bin/sh\necho tool\n", 0o755)
    assert box.left_in_tmp() == []  # the download was moved, not copied


def test_fetch_refuses_a_download_whose_sha256_differs(box: HelperRoot) -> None:
    url, sha = served(box, "tool", b"tampered\n")
    wanted = "0" * 64
    done = box.helper("files", "--fetch", url, wanted, "/usr/local/bin/tool", "0755", "-")
    assert done.returncode == 1
    assert done.stderr == f"nestcustom: {url} has sha256 {sha}; the recipe pins {wanted}\n"
    assert not box.path("/usr/local/bin/tool").exists()
    assert box.left_in_tmp() == []  # nothing unverified is left


def test_fetch_that_cannot_download_names_the_url(box: HelperRoot) -> None:
    done = box.helper("files", "--fetch", "file:///srv/none", "0" * 64, "/etc/x", "0644", "-")
    assert done.returncode == 1
    # one line: the URL and curl's own word on why
    assert (
        done.stderr
        == "nestcustom: cannot download file:///srv/none: (37) Couldn't open file /srv/none\n"
    )


def tar_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.gid, info.mode = len(data), 4242, 4242, 0o750
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_fetch_extract_unpacks_into_the_directory_as_root(box: HelperRoot) -> None:
    url, sha = served(
        box, "agent.tar.gz", tar_bytes({"agent/bin/run": b"run\n", "VERSION": b"1\n"})
    )
    done = box.helper("files", "--fetch", url, sha, "/opt/agent", "0644", "extract")
    assert (done.returncode, done.stderr) == (0, "")
    top = box.path("/opt/agent")
    assert (top / "agent/bin/run").read_text() == "run\n" and (top / "VERSION").read_text() == "1\n"
    assert (top / "VERSION").stat().st_uid == 0  # --no-same-owner: never the archive's 4242
    assert mode(top / "VERSION") == 0o750
    assert box.left_in_tmp() == []


def test_fetch_gunzip_places_the_decompressed_file_and_leaves_nothing_behind(
    box: HelperRoot,
) -> None:
    url, sha = served(box, "tool.gz", gzip.compress(b"#!/bin/sh\necho tool\n", mtime=0))
    done = box.helper("files", "--fetch", url, sha, "/usr/local/bin/tool", "0755", "gunzip")
    assert (done.returncode, done.stderr) == (0, "")
    tool = box.path("/usr/local/bin/tool")
    assert (tool.read_bytes(), mode(tool)) == (b"#!/bin/sh\necho tool\n", 0o755)
    assert box.left_in_tmp() == []
    url, sha = served(box, "bad.gz", b"not gzip\n")
    done = box.helper("files", "--fetch", url, sha, "/usr/local/bin/bad", "0755", "gunzip")
    assert done.returncode == 1
    assert box.left_in_tmp() == []
    assert sorted(p.name for p in box.path("/usr/local/bin").iterdir()) == ["tool"]


def test_tree_into_a_directory_that_is_not_there_yet_makes_it(box: HelperRoot) -> None:
    box.write("/run/tree/conf.d/a.conf", "a\n")
    done = box.helper("files", "--tree", "/run/tree", "/etc/agent/deep", "root:root")
    assert (done.returncode, done.stderr) == (0, "")
    assert box.path("/etc/agent/deep/conf.d/a.conf").read_text() == "a\n"


def test_fetch_extract_of_something_that_is_no_archive(box: HelperRoot) -> None:
    url, sha = served(box, "agent.tar.gz", b"not an archive\n")
    done = box.helper("files", "--fetch", url, sha, "/opt/agent", "0644", "extract")
    assert done.returncode == 1
    assert done.stderr.endswith(f"nestcustom: {url} is not a tar archive tar can unpack\n")
