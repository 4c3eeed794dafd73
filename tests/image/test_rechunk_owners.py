"""Which package owns each entry of an image's custom part: only what a package installs
exactly (its content digest, its link target, a directory it lists) is the package's;
RPM's paths reach the image's through the base's symbolic links; of several owners the
smallest (name, arch) wins. And the database the custom part wrote is found in it.

Most cases are made here from members and package lists; the last one is a real rpm
install (tests/image/test_rpmdb_files.py) read back end to end."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path

import pytest

from nestcustom.image.rechunk.model import BaseIndex, CustomDiff, Member, Payload, path_key
from nestcustom.image.rechunk.owners import assign, find_db
from nestcustom.image.rechunk.squash import squash
from nestcustom.image.rpmdb import PackagedFile, PackageFiles, read_files
from tests.image.test_rpmdb_files import DB_DIR, install_packages

SHA256, MD5 = 8, 1
LARGE = bytes(range(256)) * (10 << 10) + b"!"  # 2.5 MiB and a byte: read in several blocks
NO_BASE = BaseIndex(frozenset(), frozenset())


class Spool:
    """Members whose contents are in one in-memory spool, as the layer reader writes them."""

    def __init__(self) -> None:
        self.file = io.BytesIO()

    def file_member(self, path: str, content: bytes, sha256: str | None = None) -> Member:
        offset = self.file.seek(0, io.SEEK_END)
        self.file.write(content)
        digest = hashlib.sha256(content).hexdigest() if sha256 is None else sha256
        return Member(path, "file", 0o644, 0, 0, 0, payload=Payload(offset, len(content)),
                      sha256=digest)  # fmt: skip


class CountingSpool(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads = 0

    def read(self, size: int | None = -1, /) -> bytes:
        self.reads += 1
        return super().read(size)


def directory(path: str) -> Member:
    return Member(path, "dir", 0o755, 0, 0, 0)


def symlink(path: str, target: str) -> Member:
    return Member(path, "symlink", 0o777, 0, 0, 0, linkname=target)


def diff_of(*members: Member) -> CustomDiff:
    entries = tuple(sorted(members, key=lambda m: path_key(m.path)))
    return CustomDiff(entries, (), (), tuple((m.path, (0,)) for m in entries))


def package(
    name: str, *files: PackagedFile, arch: str = "x86_64", algo: int = SHA256
) -> PackageFiles:
    return PackageFiles(name, arch, "1.0-1", 100, algo, files)


def packaged_file(
    path: str, content: bytes, algo: str = "sha256", ghost: bool = False
) -> PackagedFile:
    return PackagedFile(path, "file", hashlib.new(algo, content).hexdigest(), "", ghost)


def packaged_dir(path: str, ghost: bool = False) -> PackagedFile:
    return PackagedFile(path, "dir", "", "", ghost)


def packaged_link(path: str, target: str) -> PackagedFile:
    return PackagedFile(path, "symlink", "", target, ghost=False)


def test_a_file_a_directory_and_a_link_exactly_as_the_package_installs_them_are_its() -> None:
    spool = Spool()
    diff = diff_of(
        directory("usr/share/nc"),
        spool.file_member("usr/share/nc/data", b"hello\n"),
        symlink("usr/bin/nc", "../share/nc/data"),
        spool.file_member("usr/share/nc/mine", b"the recipe's\n"),
    )
    nc = package(
        "nc",
        packaged_dir("/usr/share/nc"),
        packaged_file("/usr/share/nc/data", b"hello\n"),
        packaged_link("/usr/bin/nc", "../share/nc/data"),
        packaged_file("/usr/share/nc/gone", b"not in the image\n"),
    )
    assert assign(diff, [nc], spool.file, NO_BASE) == {
        "usr/share/nc": "nc.x86_64",
        "usr/share/nc/data": "nc.x86_64",
        "usr/bin/nc": "nc.x86_64",
    }


def test_an_edited_config_and_a_rewritten_passwd_are_no_packages() -> None:
    spool = Spool()
    diff = diff_of(
        spool.file_member("etc/nc.conf", b"conf=2\n"),
        spool.file_member(
            "etc/passwd", b"root:x:0:0::/root:/bin/bash\nnc:x:990:990::/:/sbin/nologin\n"
        ),
        spool.file_member("etc/kept.conf", b"kept=1\n"),
    )
    nc = package(
        "nc",
        packaged_file("/etc/nc.conf", b"conf=1\n"),
        packaged_file("/etc/kept.conf", b"kept=1\n"),
    )
    setup = package(
        "setup", packaged_file("/etc/passwd", b"root:x:0:0::/root:/bin/bash\n"), arch="noarch"
    )
    assert assign(diff, [nc, setup], spool.file, NO_BASE) == {"etc/kept.conf": "nc.x86_64"}


def test_a_ghost_is_no_packages_even_where_the_image_holds_what_it_names() -> None:
    spool = Spool()
    diff = diff_of(directory("run/nc"), spool.file_member("var/lib/nc/state", b""))
    nc = package(
        "nc",
        packaged_dir("/run/nc", ghost=True),
        packaged_file("/var/lib/nc/state", b"", ghost=True),
    )
    assert assign(diff, [nc], spool.file, NO_BASE) == {}
    # The same paths listed as real content are the package's: only the ghost flag differs.
    real = package("nc", packaged_dir("/run/nc"), packaged_file("/var/lib/nc/state", b""))
    assert assign(diff, [real], spool.file, NO_BASE) == {
        "run/nc": "nc.x86_64",
        "var/lib/nc/state": "nc.x86_64",
    }


def test_a_link_is_the_packages_only_with_the_packages_target() -> None:
    diff = diff_of(symlink("usr/bin/a", "a-1.0"), symlink("usr/bin/b", "/opt/elsewhere"))
    nc = package("nc", packaged_link("/usr/bin/a", "a-1.0"), packaged_link("/usr/bin/b", "b-1.0"))
    assert assign(diff, [nc], io.BytesIO(), NO_BASE) == {"usr/bin/a": "nc.x86_64"}


def test_an_entry_of_another_kind_than_the_package_lists_is_not_its() -> None:
    spool = Spool()
    diff = diff_of(
        directory("usr/lib/nc"),  # the package has a file there
        spool.file_member("usr/share/nc", b""),  # the package has a directory there
        symlink("usr/bin/nc", "x"),  # the package has a file there
    )
    nc = package(
        "nc",
        packaged_file("/usr/lib/nc", b""),
        packaged_dir("/usr/share/nc"),
        packaged_file("/usr/bin/nc", b"x"),
    )
    assert assign(diff, [nc], spool.file, NO_BASE) == {}


@pytest.mark.parametrize("target", ["usr/lib", "/usr/lib", "./usr/lib/", "usr/../usr/lib"])
def test_a_path_under_a_base_link_is_owned_where_the_link_leads(target: str) -> None:
    spool = Spool()
    diff = diff_of(directory("usr/lib/nc"), spool.file_member("usr/lib/nc/mod.conf", b"m\n"))
    base = BaseIndex(
        frozenset({"lib", "usr", "usr/lib"}), frozenset({"usr", "usr/lib"}), (("lib", target),)
    )
    nc = package("nc", packaged_dir("/lib/nc"), packaged_file("/lib/nc/mod.conf", b"m\n"))
    assert assign(diff, [nc], spool.file, base) == {
        "usr/lib/nc": "nc.x86_64",
        "usr/lib/nc/mod.conf": "nc.x86_64",
    }


def test_links_below_links_and_up_the_tree_are_followed_but_never_the_last_name() -> None:
    spool = Spool()
    diff = diff_of(
        spool.file_member("var/usrlocal/bin/tool", b"t\n"),  # /usr/local/bin/tool
        spool.file_member("usr/lib64/nc/x", b"x\n"),  # /lib64/nc/x: lib64 -> usr/lib64
        spool.file_member("var/tmp/nc/y", b"y\n"),  # /usr/tmp/nc/y: usr/tmp -> /var/tmp
        symlink("lib", "usr/lib"),  # the package ships the link /lib itself
    )
    links = (
        ("usr/local", "../var/usrlocal"),
        ("lib64", "lib64-real"),
        ("lib64-real", "/usr/lib64"),
        ("usr/tmp", "/var/tmp"),  # absolute: from the root, not from usr/
        ("lib", "usr/lib"),
    )
    base = BaseIndex(frozenset(), frozenset(), links)
    nc = package(
        "nc",
        packaged_file("/usr/local/bin/tool", b"t\n"),
        packaged_file("/lib64/nc/x", b"x\n"),
        packaged_file("/usr/tmp/nc/y", b"y\n"),
        packaged_link("/lib", "usr/lib"),
    )
    assert assign(diff, [nc], spool.file, base) == {
        "var/usrlocal/bin/tool": "nc.x86_64",
        "usr/lib64/nc/x": "nc.x86_64",
        "var/tmp/nc/y": "nc.x86_64",
        "lib": "nc.x86_64",
    }


def test_a_loop_of_links_ends_and_owns_nothing() -> None:
    """Not a/x, b/x, nor x (where a walk that gave up half-way would land)."""
    spool = Spool()
    diff = diff_of(*(spool.file_member(path, b"x\n") for path in ("a/x", "b/x", "x")))
    base = BaseIndex(frozenset(), frozenset(), (("a", "b"), ("b", "a")))
    nc = package("nc", packaged_file("/a/x", b"x\n"))
    assert assign(diff, [nc], spool.file, base) == {}


@pytest.mark.parametrize("reverse", [False, True])
def test_of_several_owners_the_smallest_name_then_arch_wins(reverse: bool) -> None:
    spool = Spool()
    diff = diff_of(
        spool.file_member("usr/share/doc/same", b"same\n"),
        spool.file_member("usr/lib/both", b"b\n"),
    )
    same = packaged_file("/usr/share/doc/same", b"same\n")
    both = packaged_file("/usr/lib/both", b"b\n")
    # By (name, arch), not by the text `name.arch`: "nc" < "nc-b" though "nc-b." < "nc.".
    packages = [
        package("nc-b", same, arch="noarch"),
        package("nc", same),
        package("nc-libs", both, arch="x86_64"),
        package("nc-libs", both, arch="i686"),
    ]
    owners = assign(diff, packages[::-1] if reverse else packages, spool.file, NO_BASE)
    assert owners == {"usr/share/doc/same": "nc.x86_64", "usr/lib/both": "nc-libs.i686"}


def test_a_smaller_package_whose_copy_differs_leaves_the_entry_to_the_one_that_matches() -> None:
    spool = Spool()
    diff = diff_of(spool.file_member("usr/share/doc/same", b"new\n"))
    old = package("nc-a", packaged_file("/usr/share/doc/same", b"old\n"))
    new = package("nc-b", packaged_file("/usr/share/doc/same", b"new\n"))
    assert assign(diff, [old, new], spool.file, NO_BASE) == {"usr/share/doc/same": "nc-b.x86_64"}


def test_other_digest_algorithms_are_checked_by_hashing_the_spooled_content() -> None:
    spool = Spool()
    diff = diff_of(
        spool.file_member("usr/share/nc/md5", b"five\n"),
        spool.file_member("usr/share/nc/sha512", b"five hundred\n"),
        spool.file_member("usr/share/nc/edited", b"edited\n"),
        spool.file_member("usr/share/nc/large", LARGE),
    )
    old = package(
        "nc-old",
        packaged_file("/usr/share/nc/md5", b"five\n", "md5"),
        packaged_file("/usr/share/nc/edited", b"original\n", "md5"),
        packaged_file("/usr/share/nc/large", LARGE, "md5"),
        algo=MD5,
    )
    big = package(
        "nc-big", packaged_file("/usr/share/nc/sha512", b"five hundred\n", "sha512"), algo=10
    )
    assert assign(diff, [old, big], spool.file, NO_BASE) == {
        "usr/share/nc/md5": "nc-old.x86_64",
        "usr/share/nc/sha512": "nc-big.x86_64",
        "usr/share/nc/large": "nc-old.x86_64",
    }
    # An algorithm this side cannot compute proves nothing: the entry stays unowned.
    odd = package("nc-odd", PackagedFile("/usr/share/nc/md5", "file", "00" * 20, "", False), algo=3)
    assert assign(diff, [odd], spool.file, NO_BASE) == {}


def test_sha256_is_the_readers_and_the_spool_is_read_only_for_other_algorithms() -> None:
    built = Spool()
    member = built.file_member("usr/share/nc/data", b"on disk\n")
    spool = CountingSpool(built.file.getvalue())
    listed = packaged_file("/usr/share/nc/data", b"on disk\n")
    assert assign(diff_of(member), [package("nc", listed)], spool, NO_BASE) == {
        "usr/share/nc/data": "nc.x86_64"
    }
    assert spool.reads == 0
    # A member whose digest the reader did not give is hashed from the spool instead.
    unhashed = built.file_member("usr/share/nc/data", b"on disk\n", sha256="")
    spool = CountingSpool(built.file.getvalue())
    assert assign(diff_of(unhashed), [package("nc", listed)], spool, NO_BASE) == {
        "usr/share/nc/data": "nc.x86_64"
    }
    assert spool.reads > 0


def test_find_db_reads_the_database_directory_the_custom_part_wrote() -> None:
    spool = Spool()
    diff = diff_of(
        directory("usr/share/rpm"),
        spool.file_member("usr/share/rpm/rpmdb.sqlite", b"main"),
        spool.file_member("usr/share/rpm/rpmdb.sqlite-wal", b"log"),
        spool.file_member("usr/share/rpm/sub/rpmdb.sqlite", b"not directly in it"),
        spool.file_member("var/lib/rpm/Packages", b"an older one, lower in the search order"),
        spool.file_member("etc/rpmdb.sqlite", b"not a database directory"),
    )
    found = find_db(diff, spool.file)
    assert found is not None
    assert (found.directory, found.backend) == ("usr/share/rpm", "sqlite")
    assert found.files == {"rpmdb.sqlite": b"main", "rpmdb.sqlite-wal": b"log"}


def test_find_db_knows_each_backend_by_its_main_file() -> None:
    spool = Spool()
    bdb = find_db(diff_of(spool.file_member("var/lib/rpm/Packages", b"bdb")), spool.file)
    ndb = find_db(
        diff_of(spool.file_member("usr/lib/sysimage/rpm/Packages.db", b"ndb")), spool.file
    )
    assert bdb is not None and (bdb.directory, bdb.backend, bdb.files) == (
        "var/lib/rpm",
        "bdb_ro",
        {"Packages": b"bdb"},
    )
    assert ndb is not None and (ndb.directory, ndb.backend) == ("usr/lib/sysimage/rpm", "ndb")


def test_find_db_is_none_when_the_custom_part_wrote_no_database() -> None:
    spool = Spool()
    only_files = diff_of(directory("etc"), spool.file_member("etc/motd", b"hello\n"))
    assert find_db(only_files, spool.file) is None
    # A log without its database (the base's main file): no database of its own; nor is a
    # directory that has the main file's name.
    log_only = diff_of(
        spool.file_member("usr/share/rpm/rpmdb.sqlite-wal", b"log"),
        directory("usr/share/rpm/rpmdb.sqlite"),
    )
    assert find_db(log_only, spool.file) is None


def members_of(root: Path, spool: Spool, skip: set[str]) -> list[Member]:
    """The tree under `root` as one layer's members, as podman's tar of it would give them."""
    members = []
    for top, dirs, files in os.walk(root):
        for name in sorted([*dirs, *files]):
            full = Path(top, name)
            path = full.relative_to(root).as_posix()
            if path in skip:
                continue
            info = full.lstat()
            if stat.S_ISLNK(info.st_mode):
                members.append(symlink(path, os.readlink(full)))
            elif stat.S_ISDIR(info.st_mode):
                members.append(directory(path))
            else:
                members.append(spool.file_member(path, full.read_bytes()))
    return members


def test_a_real_install_then_a_recipe_end_to_end(tmp_path: Path) -> None:
    """rpm installs nc-own-a (sha256; shares a file with nc-own-also), nc-own-b (md5) and
    nc-own-empty into a root whose `lib` links to usr/lib; a recipe then edits the config,
    makes the ghost file and adds a file of its own. The database found in the result
    names exactly the pristine package entries."""
    installed = install_packages(tmp_path / "packages")
    root = installed.root
    (root / "etc" / "nc-own.conf").write_text("conf=2\n")
    (root / "var" / "lib" / "nc-own").mkdir(parents=True, exist_ok=True)
    (root / "var" / "lib" / "nc-own" / "state").write_text("")
    (root / "usr" / "share" / "nc-shared" / "mine").write_text("the recipe's\n")
    (root / DB_DIR / ".rpm.lock").unlink(missing_ok=True)
    spool = Spool()
    base = BaseIndex(
        frozenset({"lib", "usr", "usr/lib"}), frozenset({"usr", "usr/lib"}), (("lib", "usr/lib"),)
    )
    diff = squash([members_of(root, spool, skip={"lib"})], base)
    found = find_db(diff, spool.file)
    assert found is not None and (found.directory, found.backend) == (DB_DIR, "sqlite")
    packages = read_files(found)
    assert [p.name for p in packages] == ["nc-own-a", "nc-own-also", "nc-own-b", "nc-own-empty"]
    a, b = "nc-own-a.noarch", "nc-own-b.noarch"
    assert assign(diff, packages, spool.file, base) == {
        "usr/bin/nc-own-link": a,
        "usr/lib/nc-own": a,  # /lib/nc-own, through the base's link
        "usr/lib/nc-own/mod.conf": a,
        "usr/share/nc-own": a,
        "usr/share/nc-own/data": a,
        "usr/share/nc-own/sub": a,
        "usr/share/nc-shared/same": a,  # nc-own-also ships it too
        "usr/share/nc-own-b": b,
        "usr/share/nc-own-b/bee": b,  # md5, hashed from the spool
    }
