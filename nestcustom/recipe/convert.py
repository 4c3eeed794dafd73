"""A schema-valid recipe document (YamlMap tree) -> the frozen Recipe.

The schema has already checked shapes and spellings, so this reads keys with
their defaults and resolves the project files the recipe names (hashing them,
so the digest follows their content). Problems with those files are collected
by `ProjectFiles`, located where the path was written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from nestcustom.keyformat import key_kind
from nestcustom.recipe import values
from nestcustom.recipe.model import (
    Base,
    BuildChecks,
    CommandCheck,
    Directory,
    Download,
    Edit,
    FileCheck,
    FileSpec,
    Flavor,
    Group,
    Initramfs,
    KernelArguments,
    KernelModule,
    Layer,
    LayerStep,
    LocalRpms,
    Rechunk,
    Recipe,
    Repo,
    RpmOstreeVersion,
    Script,
    Selinux,
    SelinuxModule,
    Signing,
    SigningScope,
    Stage,
    Swap,
    Symlink,
    Tests,
    Units,
    User,
    UserUnits,
)
from nestcustom.recipe.names import copr_repo, unit_name, units
from nestcustom.recipe.optpaths import translate_opt
from nestcustom.recipe.projectfiles import ProjectFiles, interpreter
from nestcustom.recipe.selinuxmodules import image_module_name, module_name
from nestcustom.recipe.source import YamlList, YamlMap
from nestcustom.recipe.updates import updates

Path_ = tuple[str | int, ...]
T = TypeVar("T")


class Converter:
    def __init__(self, doc: YamlMap, files: ProjectFiles) -> None:
        self.doc = doc
        self.files = files

    @staticmethod
    def where(items: YamlList, index: int) -> str:
        """FILE:LINE:COL of `items[index]`, as its Origin's location would say it."""
        mark = items.item_nodes[index].start_mark
        return f"{mark.name}:{mark.line + 1}:{mark.column + 1}"

    def recipe(self, path: str) -> Recipe:
        doc = self.doc
        base = doc["base"]
        systemd = doc.get("systemd", {})
        recipe = Recipe(
            path=path,
            name=doc["name"],
            description=doc.get("description", ""),
            arch=doc.get("arch"),
            base=Base(
                image=base["image"],
                digest=base.get("digest"),
                flavor=Flavor(base.get("flavor", "nestos")),
                rpm_ostree=RpmOstreeVersion.parse(base.get("rpm-ostree", "2022.16")),
            ),
            layers=self.layers(doc.get("layers"), ("layers",)),
            repos=_each(self.repo, doc.get("repos")),
            files=self.file_specs(doc.get("files"), ("files",)),
            dropins=self.dropins(systemd.get("dropins")),
            keys=self.keys(doc.get("keys")),
            repo_files=_each(
                lambda r: Download(
                    r["url"], r["sha256"], "/etc/yum.repos.d/" + r["url"].rsplit("/", 1)[1]
                ),
                doc.get("repo-files"),
            ),
            signing=self.signing(doc.get("signing")),
            selinux=self.selinux(doc.get("selinux")),
            step_timeout=doc.get("step-timeout"),
            base_repos_enable=tuple(doc.get("base-repos", {}).get("enable", ())),
            base_repos_disable=tuple(doc.get("base-repos", {}).get("disable", ())),
            symlinks=_each(lambda s: Symlink(s["path"], s["target"]), doc.get("symlinks")),
            directories=_each(
                lambda d: Directory(d["path"], _mode(d.get("mode", "0755"))),
                doc.get("directories"),
            ),
            removals=tuple(doc.get("remove-files", ())),
            edits=_each(
                lambda e: Edit(e["file"], e.get("section"), tuple(e["set"].items())),
                doc.get("edits"),
            ),
            downloads=_each(
                lambda x: Download(
                    x["url"],
                    x["sha256"],
                    x["dest"],
                    _mode(x.get("mode", "0644")),
                    x.get("extract", False),
                    x.get("secret"),
                    x.get("decompress"),
                ),
                doc.get("downloads"),
            ),
            units=Units(
                mask=units(systemd.get("mask")),
                unmask=units(systemd.get("unmask")),
                default_target=unit_name(systemd["default-target"])
                if "default-target" in systemd
                else None,
                user_enable=units(systemd.get("user", {}).get("enable")),
                user_disable=units(systemd.get("user", {}).get("disable")),
                preset=units(systemd.get("preset")),
            ),
            users=_each(
                lambda u: User(
                    u["name"],
                    u.get("uid"),
                    u.get("group"),
                    u.get("description", ""),
                    u.get("home"),
                    u.get("shell"),
                ),
                doc.get("users"),
            ),
            groups=_each(
                lambda g: Group(g["name"], g.get("gid"), tuple(g.get("members", ()))),
                doc.get("groups"),
            ),
            units_enable=units(systemd.get("enable")),
            units_disable=units(systemd.get("disable")),
            labels=tuple(sorted(doc.get("labels", {}).items())),
            tests=self.tests(doc.get("tests", {})),
            stages=self.stages(doc.get("stages")),
            kernel_modules=self.kernel_modules(doc.get("kernel-modules")),
            initramfs=self.initramfs(doc.get("initramfs", {})),
            checks=self.checks(doc.get("checks", {})),
            kernel_arguments=self.kernel_arguments(doc.get("kernel-arguments")),
            user_units=_each(
                lambda u: UserUnits(u["user"], units(u["enable"]), u.get("linger", False)),
                systemd.get("user-units"),
            ),
            flatpaks=tuple(doc.get("flatpaks", ())),
            updates=updates(doc.get("updates")),
            rechunk=_rechunk(doc.get("rechunk")),
        )
        if recipe.base.flavor is Flavor.NESTOS:
            # /opt is a link to var/opt on a NestOS host: paths there go to /usr/lib/opt,
            # linked back at boot, as rpm-ostree does with packages' /opt content.
            recipe = translate_opt(recipe)
        # Destinations may name values the recipe fixes ({{arch}}, {{recipe.name}}): filled
        # in here, once, so every later stage sees the real path.
        # A builder stage's files are COPYed too.
        stage_files = [spec for stage in recipe.stages for spec in stage.files]
        if not any("{{" in spec.dest for spec in (*recipe.files, *stage_files)):
            return recipe  # (a copy of the same recipe, without the cost of one)

        def filled(specs: tuple[FileSpec, ...]) -> tuple[FileSpec, ...]:
            return tuple(replace(s, dest=values.substitute_known(s.dest, recipe)) for s in specs)

        stages = tuple(replace(stage, files=filled(stage.files)) for stage in recipe.stages)
        return replace(recipe, files=filled(recipe.files), stages=stages)

    # -- layers -------------------------------------------------------------------------

    def layers(self, items: YamlList | None, path: Path_) -> tuple[Layer, ...]:
        if items is None:
            return ()
        return tuple(
            self.layer(layer, (*path, index), self.where(items, index))
            for index, layer in enumerate(items)
        )

    def layer(self, layer: YamlMap, path: Path_, origin: str) -> Layer:
        get = layer.get
        scripts = get("script", ())
        replace_from = get("replace-from")
        install = get("install", ())
        local = [(k, i) for k, i in enumerate(install) if type(i) is not str] if install else ()
        files, steps = get("files"), get("steps")
        return Layer(
            name=layer["name"],
            description=get("description", ""),
            install=tuple(i for i in install if type(i) is str) if local else tuple(install),
            local_rpms=tuple(LocalRpms(i["from"], i["path"], k) for k, i in local),
            files=self.file_specs(files, (*path, "files")) if files else (),
            steps=self.steps(steps, (*path, "steps")) if steps else (),
            remove=tuple(get("remove", ())),
            replace=tuple(get("replace", ())),
            swap=_each(lambda s: Swap(_names(s["remove"]), _names(s["install"])), get("swap")),
            run=_each(tuple, get("run")),
            scripts=tuple(
                self.script(scripts, index, (*path, "script", index))
                for index in range(len(scripts))
            )
            if scripts
            else (),
            env=tuple(get("env", {}).items()),
            repos=_each(self.repo, get("repos")),
            replace_from=(
                (replace_from["repo"], tuple(replace_from["packages"]))
                if replace_from is not None
                else None
            ),
            weak_deps=get("weak-deps", True),
            origin=origin,
        )

    def steps(self, items: YamlList | None, path: Path_) -> tuple[LayerStep, ...]:
        if not items:
            return ()
        steps = []
        for index, item in enumerate(items):
            at = (*path, index)
            kind = next(iter(item))  # the schema allows exactly one key
            if kind == "run":
                steps.append(LayerStep(kind, command=tuple(item["run"])))
            elif kind == "script":
                steps.append(LayerStep(kind, script=self.script(item, "script", (*at, "script"))))
            elif kind == "files":
                steps.append(LayerStep(kind, files=self.file_specs(item["files"], (*at, "files"))))
            elif kind == "initramfs":
                options = self.initramfs({"regenerate": True, **item["initramfs"]})
                steps.append(LayerStep(kind, initramfs=options))
            else:
                selinux = self.selinux(item["selinux"], (*at, "selinux"))
                steps.append(LayerStep(kind, selinux=selinux))
        return tuple(steps)

    def script(self, scripts: YamlList | YamlMap, index: int | str, path: Path_) -> Script:
        """A script of a layer's script: list (`index` a number) or of a step (`script`)."""
        if isinstance(scripts, YamlList) and isinstance(index, int):
            entry, container_origin = scripts[index], scripts.item_origin(index)
        else:
            assert isinstance(scripts, YamlMap) and isinstance(index, str)
            entry = scripts[index]
            container_origin = scripts.value_origin(index) or scripts.origin
        if isinstance(entry, str):
            relative, args, where = entry, (), container_origin
        else:
            relative, args = entry["path"], tuple(entry.get("args", ()))
            where = entry.value_origin("path") or container_origin
            path = (*path, "path")
        found = self.files.find(relative, where.location, path)
        if found is None:  # already reported; kept so its layer is not also called empty
            return Script(relative, args)
        return Script(found.path, args, interpreter(found.head), found.sha256)

    # -- files, stages, kernel modules ---------------------------------------------------

    def file_specs(self, items: YamlList | None, path: Path_) -> tuple[FileSpec, ...]:
        if items is None:
            return ()
        specs = []
        for index, entry in enumerate(items):
            mode = _mode(entry.get("mode", "0644"))
            owner = entry.get("owner")
            if "from" in entry:  # out of a stage or image: nothing to read here
                specs.append(FileSpec(entry["src"], entry["dest"], mode, "", entry["from"], owner))
                continue
            where = entry.value_origin("src") or items.item_origin(index)
            found = self.files.find_file_or_tree(
                entry["src"], where.location, (*path, index, "src")
            )
            if found is None:
                # Missing or unreadable: ProjectFiles reported it. The entry stays in the
                # model so that the rules judge the rest of it (its dest) and do not call
                # the recipe empty; a recipe with a problem is never built.
                specs.append(FileSpec(entry["src"], entry["dest"], mode, "", None, owner))
                continue
            file, tree = found
            specs.append(FileSpec(file.path, entry["dest"], mode, file.sha256, None, owner, tree))
        return tuple(specs)

    def keys(self, items: YamlList | None) -> tuple[FileSpec, ...]:
        """Signing keys: installed as /etc/pki/rpm-gpg/NAME before the layers."""
        specs = []
        for index, relative in enumerate(items or ()):
            where = items.item_origin(index)  # type: ignore[union-attr]
            found = self.files.find(relative, where.location, ("keys", index))
            if found is not None:
                name = found.path.rsplit("/", 1)[-1]
                specs.append(FileSpec(found.path, f"/etc/pki/rpm-gpg/{name}", "0644", found.sha256))
        return tuple(specs)

    def signing(self, entry: YamlMap | None) -> Signing:
        if entry is None:
            return Signing()
        scopes = []
        items = entry["scopes"]
        for index, item in enumerate(items):
            where = item.value_origin("key") or items.item_origin(index)
            path = ("signing", "scopes", index, "key")
            found = self.files.find(item["key"], where.location, path)
            if found is not None:
                name = found.path.rsplit("/", 1)[-1]
                key = FileSpec(found.path, f"/etc/pki/containers/{name}", "0644", found.sha256)
                kind = key_kind(found.head)
                scopes.append(
                    SigningScope(
                        item["scope"], key, item.get("type", "gpg"), item.get("lookaside"), kind
                    )
                )
        return Signing(tuple(scopes), entry.get("default", "accept") == "reject")

    def selinux(self, entry: YamlMap | None, path: Path_ = ("selinux",)) -> Selinux:
        if entry is None:
            return Selinux()
        modules = []
        items = entry.get("modules", ())
        for index, relative in enumerate(items):
            if relative.startswith("/"):  # a file an installed package put in the image
                modules.append(SelinuxModule(relative, "", image_module_name(relative), index))
                continue
            where = items.item_origin(index)
            found = self.files.find(relative, where.location, (*path, "modules", index))
            if found is not None:
                try:
                    data = (self.files.root / found.path).read_bytes()
                except OSError:  # found a moment ago: a .pp that cannot be read is not one
                    data = b""
                name = module_name(found.path, data) or ""
                modules.append(SelinuxModule(found.path, found.sha256, name, index))
        booleans = tuple((name, value) for name, value in entry.get("booleans", {}).items())
        return Selinux(booleans, tuple(modules), entry.get("priority", 400))

    def dropins(self, items: YamlList | None) -> tuple[FileSpec, ...]:
        """Unit drop-ins: files installed as /usr/lib/systemd/system/UNIT.d/NAME."""
        specs = []
        for index, entry in enumerate(items or ()):
            where = entry.value_origin("src") or items.item_origin(index)  # type: ignore[union-attr]
            path = ("systemd", "dropins", index, "src")
            found = self.files.find(entry["src"], where.location, path)
            if found is None:
                continue
            name = entry.get("name") or found.path.rsplit("/", 1)[-1]
            dest = f"/usr/lib/systemd/system/{unit_name(entry['unit'])}.d/{name}"
            specs.append(FileSpec(found.path, dest, "0644", found.sha256))
        return tuple(specs)

    def stages(self, items: YamlList | None) -> tuple[Stage, ...]:
        if items is None:
            return ()
        return tuple(
            Stage(
                name=stage["name"],
                image=stage["from"],
                packages=stage.get("packages", "dnf"),
                files=self.file_specs(stage.get("files"), ("stages", index, "files")),
                layers=self.layers(stage.get("layers"), ("stages", index, "layers")),
                origin=self.where(items, index),
            )
            for index, stage in enumerate(items)
        )

    def kernel_modules(self, items: YamlList | None) -> tuple[KernelModule, ...]:
        if items is None:
            return ()
        modules = []
        for index, entry in enumerate(items):
            src, digest = entry.get("src"), None
            if src is not None and "from" not in entry:
                where = entry.value_origin("src") or items.item_origin(index)
                found = self.files.find(src, where.location, ("kernel-modules", index, "src"))
                if found is None:
                    continue
                src, digest = found.path, found.sha256
            modules.append(
                KernelModule(
                    name=entry["name"],
                    stage=entry.get("from"),
                    src=src,
                    load=entry.get("load", True),
                    options=entry.get("options"),
                    sha256=digest,
                )
            )
        return tuple(modules)

    # -- the rest -----------------------------------------------------------------------

    @staticmethod
    def repo(entry: YamlMap) -> Repo:
        copr = (
            copr_repo(entry["copr"], entry["chroot"], entry.get("copr-instance"))
            if "copr" in entry
            else {}
        )
        return Repo(
            id=copr.get("id") or entry["id"],
            name=entry.get("name"),
            baseurl=copr.get("baseurl") or entry.get("baseurl"),
            metalink=entry.get("metalink"),
            mirrorlist=entry.get("mirrorlist"),
            gpgcheck=entry.get("gpgcheck", True),
            gpgkey=copr.get("gpgkey") or entry.get("gpgkey"),
            enabled=entry.get("enabled", True),
            repo_gpgcheck=entry.get("repo_gpgcheck", False),
            secret=entry.get("secret"),
        )

    @staticmethod
    def initramfs(entry: dict[str, Any]) -> Initramfs:
        return Initramfs(
            entry.get("regenerate", False),
            tuple(entry.get("drivers", ())),
            tuple(entry.get("add", ())),
            tuple(entry.get("omit", ())),
            tuple(entry.get("omit-drivers", ())),
            tuple(entry.get("install", ())),
        )

    @staticmethod
    def kernel_arguments(entry: dict[str, Any] | None) -> KernelArguments:
        if entry is None:
            return KernelArguments()
        return KernelArguments(
            tuple(entry.get("append", ())),
            tuple(entry.get("delete", ())),
            tuple(entry.get("replace", ())),
            tuple(entry.get("match-architectures", ())),
            written=True,
        )

    @staticmethod
    def checks(entry: dict[str, Any]) -> BuildChecks:
        return BuildChecks(
            host_rules=entry.get("host-rules", True),
            packages=tuple(entry.get("packages", ())),
            files=tuple(entry.get("files", ())),
            commands=tuple(tuple(c) for c in entry.get("commands", ())),
        )

    @staticmethod
    def tests(tests: dict[str, Any]) -> Tests:
        packages = tests.get("packages", {})
        wanted = tests.get("units", {})
        return Tests(
            present=tuple(packages.get("present", ())),
            absent=tuple(packages.get("absent", ())),
            files=tuple(
                FileCheck(f["path"], f.get("exists", True), f.get("mode"), f.get("contains"))
                for f in tests.get("files", ())
            ),
            commands=tuple(
                CommandCheck(
                    tuple(c["run"]), c.get("exit", 0), c.get("stdout"), float(c.get("timeout", 60))
                )
                for c in tests.get("commands", ())
            ),
            units_enabled=units(wanted.get("enabled")),
            units_disabled=units(wanted.get("disabled")),
        )


def _each(make: Callable[[Any], T], items: list[Any] | None) -> tuple[T, ...]:
    """`make` of each item; most recipes leave most lists out, which costs nothing here."""
    return tuple(make(item) for item in items) if items else ()


def _mode(mode: str) -> str:
    return mode if len(mode) == 4 else "0" + mode


def _names(value: str | list[str]) -> tuple[str, ...]:
    """One package or a list of them (swap's two forms)."""
    return (value,) if isinstance(value, str) else tuple(value)


def _rechunk(value: object) -> Rechunk | None:
    """`rechunk: true`, or its settings (the schema allows nothing else)."""
    if isinstance(value, dict):
        return Rechunk(max_layers=value.get("max-layers", Rechunk.max_layers))
    return Rechunk() if value is True else None
