"""Small ISO images for the fast tests, made with pycdlib (no xorriso, no root)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pycdlib


def _iso_name(part: str, is_dir: bool) -> str:
    clean = "".join(c if c.isalnum() else "_" for c in part.upper())
    if is_dir:
        return clean[:31]
    stem, _, ext = part.upper().rpartition(".")
    stem = "".join(c if c.isalnum() else "_" for c in (stem or ext))[:24]
    ext = "".join(c if c.isalnum() else "_" for c in ext)[:3] if stem != ext else ""
    return f"{stem}.{ext};1"


def make_iso(
    path: Path,
    files: dict[str, bytes],
    *,
    rock_ridge: bool = True,
    joliet: bool = False,
    udf: bool = False,
) -> Path:
    """An ISO holding `files` (path -> bytes) under Rock Ridge and/or Joliet/UDF names."""
    iso = pycdlib.PyCdlib()
    iso.new(
        interchange_level=4,
        rock_ridge="1.09" if rock_ridge else None,
        joliet=3 if joliet else None,
        udf="2.60" if udf else None,
        vol_ident="NCTEST",
    )
    made: set[str] = set()
    for name in sorted(files):
        parts = name.strip("/").split("/")
        for depth in range(1, len(parts)):
            directory = "/" + "/".join(parts[:depth])
            if directory in made:
                continue
            made.add(directory)
            kwargs: dict[str, Any] = {
                "iso_path": "/" + "/".join(_iso_name(p, True) for p in parts[:depth])
            }
            if rock_ridge:
                kwargs["rr_name"] = parts[depth - 1]
            if joliet:
                kwargs["joliet_path"] = directory
            if udf:
                kwargs["udf_path"] = directory
            iso.add_directory(**kwargs)
        data = files[name]
        kwargs = {
            "iso_path": "/"
            + "/".join([*(_iso_name(p, True) for p in parts[:-1]), _iso_name(parts[-1], False)])
        }
        if rock_ridge:
            kwargs["rr_name"] = parts[-1]
        if joliet:
            kwargs["joliet_path"] = "/" + "/".join(parts)
        if udf:
            kwargs["udf_path"] = "/" + "/".join(parts)
        iso.add_fp(io.BytesIO(data), len(data), **kwargs)
    iso.write(str(path))
    iso.close()
    return path


REPOMD = b"""<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo">
  <revision>1</revision>
  <data type="primary"><location href="repodata/primary.xml.gz"/></data>
  <data type="other"><location href="repodata/other.xml.gz"/></data>
  <data type="group"><location href="repodata/comps.xml"/></data>
</repomd>
"""


def repo_files(prefix: str = "") -> dict[str, bytes]:
    """A repository's metadata files (content irrelevant beyond repomd.xml)."""
    base = f"{prefix}/" if prefix else ""
    return {
        f"{base}repodata/repomd.xml": REPOMD,
        f"{base}repodata/primary.xml.gz": b"primary",
        f"{base}repodata/other.xml.gz": b"other",
        f"{base}repodata/comps.xml": b"<comps/>",
    }


TREEINFO = b"""[header]
type = productmd.treeinfo
version = 1.2

[release]
name = NewStart CGS Linux
version = 6.06

[general]
family = NewStart CGS Linux
version = 6.06
arch = x86_64
timestamp = 1699617600

[tree]
arch = x86_64
build_timestamp = 1699617600
variants = AppStream,BaseOS

[variant-AppStream]
id = AppStream
repository = AppStream
type = variant

[variant-BaseOS]
id = BaseOS
repository = BaseOS
type = variant
"""
