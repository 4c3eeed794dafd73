"""DVD ISO -> base image: the stages in order, the work directory, signals, the report.

check the file -> read the image -> its repositories -> resolve (nothing written
yet but metadata in a temporary directory) -> extract only the needed RPMs ->
bootstrap the ISO's rpm (checked by the host's rpm first) -> install the root ->
clean -> one tarball -> image -> tag (only after all of it succeeded) -> push
(optional). With a cache directory, what an ISO always gives (its metadata,
dnf's cache of it, the checked bootstrap) is kept per ISO sha256 (isocache).

Everything is built in one temporary work directory, removed at the end
whatever happens; SIGTERM is turned into an exception like Ctrl-C so the same
clean-up runs, and the namespace the install ran in dies with its processes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from nestcustom import proc
from nestcustom.base import (
    bootstrap,
    install,
    isocache,
    packages,
    repos,
    resolve,
    slim,
    staging,
    tarball,
)
from nestcustom.base import image as image_writer
from nestcustom.base.isofile import IsoFormat, check_iso, open_iso
from nestcustom.base.variants import Variant
from nestcustom.errors import BadInputError, NestcustomError


@dataclass(frozen=True)
class Options:
    iso: Path
    variant: Variant
    specs: tuple[str, ...] = ("@core",)
    tag: str | None = None
    push: bool = False
    tls_verify: bool = True
    gpgcheck: bool = True
    workdir: Path | None = None
    cache_dir: Path | None = None  # None: nothing is kept between builds


@dataclass(frozen=True)
class Event:
    phase: str  # check, read, resolve, extract, bootstrap, verify, install, clean, tar, image, push
    text: str
    done: int = 0
    total: int = 0


@dataclass(frozen=True)
class BaseImage:
    image_id: str
    reference: str | None
    digest: str | None  # the pushed manifest digest
    variant: str
    iso_name: str
    iso_sha256: str
    release: repos.Release
    packages: tuple[str, ...]  # NAME-EPOCH:VERSION-RELEASE.ARCH the image's rpm lists
    install_size: int  # bytes, from the packages' headers
    layer_size: int  # bytes of the uncompressed layer
    left_out: dict[str, dict[str, int]]  # optimized: per category
    dbpath: str
    db_backend: str  # bdb (EL8's rpm), sqlite, ndb
    normalized: int  # Berkeley DB: headers whose install times were set from the ISO's date
    rpm_version: str
    warnings: tuple[str, ...]
    from_cache: tuple[str, ...] = ()  # what an earlier build of this ISO kept: metadata, bootstrap
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def pinned(self) -> str | None:
        """REPOSITORY@sha256:... of the pushed image."""
        if not (self.reference and self.digest):
            return None
        from nestcustom.image.events import split_reference

        return f"{split_reference(self.reference)[0]}@{self.digest}"


@contextlib.contextmanager
def terminate_as_exception() -> Iterator[None]:
    """SIGTERM raises `proc.Interrupted` in the main thread while the build runs.

    The CLI already does this for every command; a program that calls
    `build_base` itself gets the same clean-up on SIGTERM as on Ctrl-C.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise proc.Interrupted(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _hash_file(path: Path, out: list[str]) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(8 * 1024 * 1024):
            digest.update(chunk)
    out.append(digest.hexdigest())


def build_base(options: Options, on_event: Callable[[Event], None] = lambda e: None) -> BaseImage:
    """Build (and tag, and push) a base image from the DVD ISO; see the module docstring."""
    timings: dict[str, float] = {}
    mark = time.monotonic()

    def lap(phase: str) -> None:
        nonlocal mark
        now = time.monotonic()
        timings[phase] = timings.get(phase, 0.0) + now - mark
        mark = now

    with terminate_as_exception(), _umask(0o022):
        return _in_work_directory(options, on_event, lap, timings)


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    """The root's own directories (/, /dev, /proc, what scriptlets make) get the same
    modes whatever the caller's umask is: one input less that changes the image."""
    import os

    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def _in_work_directory(
    options: Options,
    on_event: Callable[[Event], None],
    lap: Callable[[str], None],
    timings: dict[str, float],
) -> BaseImage:
    """Check the ISO, then build in a temporary directory that goes whatever happens."""
    progress = {"tagged": ""}
    parent = options.workdir or Path(tempfile.gettempdir())
    try:
        on_event(Event("check", f"checking {options.iso}"))
        fmt = check_iso(options.iso)
        if not parent.is_dir():
            raise BadInputError(f"--workdir {parent}: no such directory")
        with tempfile.TemporaryDirectory(prefix="nestcustom-base-", dir=parent) as tmp:
            work = Path(tmp)
            try:
                with contextlib.ExitStack() as stack:
                    return _build(options, fmt, work, stack, on_event, lap, timings, progress)
            finally:
                on_event(Event("clean", f"removing the work directory {work}"))
                staging.remove_work(work)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise NestcustomError(
                f"no space left in the work directory under {parent}",
                "free space there or pass --workdir on a larger file system",
            ) from exc
        raise
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM as proc.Interrupted
        signum, _ = proc.stop_signal_of(exc)
        left = (
            f"{progress['tagged']} was already tagged"
            if progress["tagged"]
            else "no image was tagged"
        )
        raise proc.Interrupted(
            signum, f"the work directory and its install namespace are gone; {left}"
        ) from None


def _build(
    options: Options,
    fmt: IsoFormat,
    work: Path,
    stack: contextlib.ExitStack,
    on_event: Callable[[Event], None],
    lap: Callable[[str], None],
    timings: dict[str, float],
    progress: dict[str, str],
) -> BaseImage:
    """The stages in order; `stack` holds the scratch space until the end."""
    meta_dir = work / "meta"
    lap("check")
    iso_sha: list[str] = []
    hasher = threading.Thread(target=_hash_file, args=(options.iso, iso_sha), daemon=True)
    hasher.start()
    cache, warnings = isocache.open_or_warn(options.cache_dir)
    early = isocache.known_sha256(cache, options.iso) if cache else None
    entry = cache.entry(early) if cache and early else None
    used: list[str] = []
    with open_iso(options.iso) as reader:
        on_event(Event("read", f"{fmt.kind} image {fmt.volume_id!r}, {reader.namespace} names"))
        media = repos.read_media(reader, fmt)
        if options.gpgcheck and not media.keys:
            raise BadInputError(
                f"{options.iso}: the image carries no signing key (RPM-GPG-KEY-*) to check packages against",
                "pass --no-gpgcheck to build without signature checks (not advised)",
            )
        if entry is not None:
            used += ["metadata"] if entry.metadata.is_dir() else []
            kept = entry.store("meta", lambda tmp: repos.copy_metadata(reader, media, tmp))
            metadata = repos.local_metadata(media, kept)
        else:
            metadata = repos.copy_metadata(reader, media, meta_dir)
        lap("read")
        on_event(
            Event(
                "resolve",
                f"resolving {','.join(options.specs)} in {', '.join(r.id for r in media.repos)}",
            )
        )
        plan = resolve.resolve(
            media, metadata, options.specs, options.variant, work, entry.dnf if entry else None
        )
        on_event(
            Event(
                "resolve",
                f"{len(plan.packages)} packages, {plan.install_size / 1e6:.0f} MB installed",
            )
        )
        lap("resolve")
        # Without --workdir, everything that is thrown away at the end (packages, bootstrap,
        # the root itself) lives in memory when it fits; an explicit --workdir is obeyed.
        scratch = staging.scratch_bytes(plan) + plan.install_size
        memory = options.workdir is None and staging.in_memory(scratch)
        stage = stack.enter_context(staging.staged(work, memory))
        staging.check_space(work, plan, 0 if memory else scratch)
        iso_dir, root = stage / "iso", stage / "root"
        if cache is not None and entry is None:  # this ISO's first build: keep what it gives
            hasher.join()
            entry = isocache.first_entry(cache, iso_sha[0], meta_dir)
        for key in media.keys:
            reader.extract(key, iso_dir / key.lstrip("/"))
        packages.extract_packages(
            reader,
            bootstrap.needed_packages(plan, entry, options.gpgcheck),
            iso_dir,
            lambda done, total, name: on_event(Event("extract", name, done, total)),
        )
        lap("extract")
    install_started = time.time() - 1  # anything the install touches is newer than this
    boot = bootstrap.prepare(
        entry=entry,
        plan=plan,
        rpms=install.bootstrap_files(iso_dir, plan.bootstrap),
        keys=[iso_dir / k.lstrip("/") for k in media.keys],
        stage=stage,
        work=work,
        gpgcheck=options.gpgcheck,
        on_text=lambda text: on_event(Event("bootstrap", text)),
    )
    used += ["bootstrap"] if boot.from_cache else []
    lap("bootstrap")

    def relay(line: str) -> None:
        if line.startswith("phase "):
            on_event(Event(line.split(" ", 1)[1], line.split(" ", 1)[1]))
        elif line.startswith("install "):
            _, counts, name = line.split(" ", 2)
            done, total = counts.split("/")
            on_event(Event("install", name, int(done), int(total)))

    installed = install.install_root(
        work=work,
        boot=boot.root,
        boot_lower=boot.lower,
        root=root,
        iso_dir=iso_dir,
        plan=plan,
        keys=media.keys,
        variant=options.variant,
        gpgcheck=options.gpgcheck,
        source_date_epoch=media.release.source_date_epoch,
        on_line=relay,
        verified=bootstrap.verified_before(entry, plan, options.gpgcheck),
    )
    bootstrap.record_verified(entry, plan, options.gpgcheck)
    lap("install")
    timings["install_rpm"] = installed.seconds
    timings["normalize_rpmdb"] = installed.normalize_seconds
    wanted = sorted(p.nevra_epoch for p in plan.packages)
    if list(installed.packages) != wanted:
        extra = sorted(set(installed.packages) - set(wanted))
        missing = sorted(set(wanted) - set(installed.packages))
        raise NestcustomError(
            f"the image's rpm database does not list the resolved set (extra: {extra[:5]}, missing: {missing[:5]})"
        )
    on_event(Event("clean", "cleaning the root"))
    caches, logs = slim.clean_root(
        root,
        owned=installed.owned,
        dbpath=installed.dbpath,
        variant=options.variant,
        source_date_epoch=media.release.source_date_epoch,
    )
    left: dict[str, dict[str, int]] = {}
    if options.variant.slim:
        counted = slim.left_out(iso_dir / p.path for p in plan.packages)
        savings = slim.Savings(
            docs=counted.get("docs", (0, 0)),
            man_info=counted.get("man_info", (0, 0)),
            locales=counted.get("locales", (0, 0)),
            debug=counted.get("debug", (0, 0)),
            caches=caches,
            logs=logs,
        )
        left = savings.as_dict()
    lap("clean")
    on_event(Event("tar", "writing the layer"))
    slim.settle_times(root, install_started, media.release.source_date_epoch)
    lap("settle")
    layer = tarball.size_layer(root)
    lap("tar")
    hasher.join()
    if cache is not None:
        isocache.check_and_remember(cache, options.iso, early, iso_sha[0])
    spec = image_writer.spec_for(
        options.iso, options.specs, options.variant, media, root, iso_sha[0]
    )
    staging.remove_tree(boot.root)
    on_event(Event("image", f"writing and loading the image ({layer.size / 1e6:.0f} MB layer)"))
    reference, digest, image_id = _load_tag_push(
        options,
        lambda on_image_id: image_writer.DockerArchive(
            spec, layer, _counted(tarball.layer_chunks(layer), layer.size, on_event), on_image_id
        ),
        on_event,
        progress,
    )
    lap("image")
    if installed.clock_install_times:
        warnings.append(
            f"the ISO's rpm ({installed.rpm_version}) records install times from the clock, not "
            "SOURCE_DATE_EPOCH: the rpm database, and so the image digest, differ between builds"
        )
    return BaseImage(
        image_id=image_id,
        reference=reference,
        digest=digest,
        variant=options.variant.name,
        iso_name=options.iso.name,
        iso_sha256=iso_sha[0],
        release=media.release,
        packages=installed.packages,
        install_size=plan.install_size,
        layer_size=layer.size,
        left_out=left,
        dbpath=installed.dbpath,
        db_backend=installed.backend,
        normalized=installed.normalized,
        rpm_version=installed.rpm_version,
        warnings=tuple(warnings),
        from_cache=tuple(used),
        seconds=timings,
    )


def _counted(
    chunks: Iterator[bytes], total: int, on_event: Callable[[Event], None]
) -> Iterator[bytes]:
    """The layer's chunks, with a progress event every 16 MB."""
    done = reported = 0
    for chunk in chunks:
        done += len(chunk)
        if done - reported >= 16_000_000:
            reported = done
            on_event(Event("image", "MB of the layer", done // 1_000_000, total // 1_000_000))
        yield chunk


def _load_tag_push(
    options: Options,
    make_archive: Callable[[Callable[[str], None]], image_writer.DockerArchive],
    on_event: Callable[[Event], None],
    progress: dict[str, str],
) -> tuple[str | None, str | None, str]:
    """Load the archive, tag it, push it: (reference, pushed digest, image ID)."""
    from nestcustom.image import registry, service

    with service.connect() as podman:
        existed: set[str] = set()

        def note_existing(image_id: str) -> None:  # before podman stores anything
            if podman.exists(image_id):
                existed.add(image_id)

        archive = make_archive(note_existing)
        loaded = ""
        try:
            loaded = podman.load_stream(archive, "the base image")
            image_id = archive.image_id
            if loaded != image_id:
                raise NestcustomError(
                    f"podman stored the image as {loaded[:12]}, expected {image_id[:12]}"
                )
            if options.tag:
                podman.tag(image_id, options.tag)
                progress["tagged"] = options.tag
        except BaseException:
            # An image this run loaded but never tagged goes again; one that was there
            # before (the same build done earlier) stays.
            sent = archive.image_id if archive.image_id_known else ""
            for stored in {loaded, sent} - existed - {""}:
                with contextlib.suppress(Exception):
                    podman.remove(stored)
            raise
        if not options.tag:
            return None, None, image_id
        on_event(Event("image", f"tagged {options.tag}"))
        if not options.push:
            return options.tag, None, image_id
        on_event(Event("push", f"pushing {options.tag}"))
        podman.push(options.tag, tls_verify=options.tls_verify, on_line=lambda line: None)
        digest, _ = registry.manifest(options.tag, tls_verify=options.tls_verify)
        return options.tag, digest, image_id
