"""A schema-valid recipe document (YamlMap tree) -> the frozen Recipe.

The schema has already checked shapes and spellings, so this reads keys with
their defaults and resolves the project files the recipe names (hashing them,
so the digest follows their content). Problems with those files are collected
by `ProjectFiles`, located where the path was written.
"""

from __future__ import annotations

from typing import Any

from nestcustom.recipe.model import (
    Base,
    BuildChecks,
    CommandCheck,
    FileCheck,
    FileSpec,
    Flavor,
    Initramfs,
    KernelModule,
    Layer,
    Recipe,
    Repo,
    RpmOstreeVersion,
    Script,
    Stage,
    Swap,
    Tests,
)
from nestcustom.recipe.projectfiles import ProjectFiles, interpreter
from nestcustom.recipe.source import YamlList, YamlMap

Path_ = tuple[str | int, ...]


class Converter:
    def __init__(self, doc: YamlMap, files: ProjectFiles) -> None:
        self.doc = doc
        self.files = files

    def where(self, container: YamlMap | YamlList, key: str | int) -> str:
        origin = (
            container.value_origin(key)
            if isinstance(container, YamlMap) and isinstance(key, str)
            else container.item_origin(key)  # type: ignore[union-attr, arg-type]
        )
        return str(origin.location) if origin else ""

    def recipe(self, path: str) -> Recipe:
        doc = self.doc
        base = doc["base"]
        systemd = doc.get("systemd", {})
        return Recipe(
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
            repos=tuple(self.repo(r) for r in doc.get("repos", ())),
            files=self.file_specs(doc.get("files"), ("files",)),
            units_enable=tuple(systemd.get("enable", ())),
            units_disable=tuple(systemd.get("disable", ())),
            labels=tuple(sorted(doc.get("labels", {}).items())),
            tests=self.tests(doc.get("tests", {})),
            stages=self.stages(doc.get("stages")),
            kernel_modules=self.kernel_modules(doc.get("kernel-modules")),
            initramfs=self.initramfs(doc.get("initramfs", {})),
            checks=self.checks(doc.get("checks", {})),
        )

    # -- layers -------------------------------------------------------------------------

    def layers(self, items: YamlList | None, path: Path_) -> tuple[Layer, ...]:
        if items is None:
            return ()
        return tuple(
            self.layer(layer, (*path, index), self.where(items, index))
            for index, layer in enumerate(items)
        )

    def layer(self, layer: YamlMap, path: Path_, origin: str) -> Layer:
        scripts = layer.get("script", YamlList(layer.node))
        return Layer(
            name=layer["name"],
            description=layer.get("description", ""),
            install=tuple(layer.get("install", ())),
            remove=tuple(layer.get("remove", ())),
            replace=tuple(layer.get("replace", ())),
            swap=tuple(Swap(s["remove"], s["install"]) for s in layer.get("swap", ())),
            run=tuple(tuple(command) for command in layer.get("run", ())),
            scripts=tuple(
                self.script(scripts, index, (*path, "script", index))
                for index in range(len(scripts))
            ),
            env=tuple(layer.get("env", {}).items()),
            origin=origin,
        )

    def script(self, scripts: YamlList, index: int, path: Path_) -> Script:
        entry = scripts[index]
        if isinstance(entry, str):
            relative, args, where = entry, (), scripts.item_origin(index)
        else:
            relative, args = entry["path"], tuple(entry.get("args", ()))
            where = entry.value_origin("path") or scripts.item_origin(index)
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
            mode = entry.get("mode", "0644")
            mode = mode if len(mode) == 4 else "0" + mode
            if "from" in entry:  # out of a stage or image: nothing to read here
                specs.append(FileSpec(entry["src"], entry["dest"], mode, "", entry["from"]))
                continue
            where = entry.value_origin("src") or items.item_origin(index)
            found = self.files.find(entry["src"], where.location, (*path, index, "src"))
            if found is not None:
                specs.append(FileSpec(found.path, entry["dest"], mode, found.sha256))
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
        return Repo(
            id=entry["id"],
            name=entry.get("name"),
            baseurl=entry.get("baseurl"),
            metalink=entry.get("metalink"),
            mirrorlist=entry.get("mirrorlist"),
            gpgcheck=entry.get("gpgcheck", True),
            gpgkey=entry.get("gpgkey"),
            enabled=entry.get("enabled", True),
        )

    @staticmethod
    def initramfs(entry: dict[str, Any]) -> Initramfs:
        return Initramfs(entry.get("regenerate", False), tuple(entry.get("drivers", ())))

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
        units = tests.get("units", {})
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
            units_enabled=tuple(units.get("enabled", ())),
            units_disabled=tuple(units.get("disabled", ())),
        )
