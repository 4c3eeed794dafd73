"""The name semodule gives a .pp policy package, read from its header as libsepol reads
it, and every header it would refuse (then the recipe says the file is no package)."""

from __future__ import annotations

import struct

import pytest

from nestcustom.recipe.selinuxmodules import pp_name

TEXT = b"SE Linux Module"


def module(
    name: bytes, policy_type: int = 2, magic: int = 0xF97CFF8D, size: int | None = None
) -> bytes:
    body = (
        struct.pack("<II", magic, len(TEXT))
        + TEXT
        + struct.pack("<IIIII", policy_type, 21, 1, 8, 0)
    )
    if policy_type == 2:
        body += struct.pack("<I", len(name) if size is None else size) + name
    return body + struct.pack("<I", 3) + b"1.0"


def package(body: bytes, sections: int = 1, magic: int = 0xF97CFF8F, offset: int = 16) -> bytes:
    return struct.pack("<IIII", magic, 1, sections, offset) + body + b"\0" * 64


def test_a_package_names_its_module() -> None:
    assert pp_name(package(module(b"myapp"))) == "myapp"
    assert pp_name(package(module(b"x" * 255))) == "x" * 255  # the longest name there is


@pytest.mark.parametrize("sections", [1, 16])
def test_one_to_sixteen_sections(sections: int) -> None:
    assert pp_name(package(module(b"m"), sections=sections)) == "m"


@pytest.mark.parametrize(
    "data",
    [
        package(module(b"m"), sections=0),
        package(module(b"m"), sections=17),
        package(module(b"m"), magic=0xF97CFF8E),  # not a package, its sections plausible
        package(module(b"m", magic=0xF97CFF8C)),  # the module's own magic is wrong
        package(module(b"m", policy_type=3)),  # neither a base nor a module
        package(module(b"", size=0)),  # a module without a name
        package(module(b"x" * 256)),  # longer than libsepol allows
        package(module(b"m", size=200)),  # a name cut short
        package(module(b"caf\xc3\xa9")),  # not ASCII
        package(module(b"m"), offset=2**32 - 200),  # the module's offset past the end
    ],
)
def test_headers_semodule_would_refuse(data: bytes) -> None:
    assert pp_name(data) is None


def test_an_offset_with_its_top_bit_set_is_not_counted_from_the_end() -> None:
    # Read as a signed number it would point back into the file, at a valid module.
    body = module(b"myapp")
    data = struct.pack("<IIII", 0xF97CFF8F, 1, 1, 2**32 - len(body)) + body
    assert pp_name(data) is None
