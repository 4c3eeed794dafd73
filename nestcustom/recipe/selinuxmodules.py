"""What semodule calls a policy module file of the project, read as semodule reads it.

`semodule -i FILE` takes the language from the file's extension (libsemanage,
semanage_direct_install_file): a `.cil` module is named after its file (NAME.cil),
a `.pp` policy package (from checkmodule and semodule_package, possibly
bzip2-compressed, as Fedora ships them) by the name compiled into its header.
libsemanage refuses names that do not start with a letter or that hold other
characters than letters, digits, `_`, `-` and single dots
(semanage_module_validate_name).

The .pp header, little-endian 32-bit words (libsepol module.c and policydb.c):
package magic 0xf97cff8f, version, section count, one offset per section; at the
first offset the module: magic 0xf97cff8d, the length and text "SE Linux Module",
policy type (1 base, 2 module), policy version, config, symbol count, ocontext
count, then for a module (not a base) the length and text of its name; a base
module is called "base".
"""

from __future__ import annotations

import bz2
import re
import struct
from posixpath import basename

PACKAGE_MAGIC = 0xF97CFF8F
MODULE_MAGIC = 0xF97CFF8D
MODULE_TEXT = b"SE Linux Module"
POLICY_BASE, POLICY_MOD = 1, 2
MAX_NAME = 255
VALID_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$")


def cil_name(path: str) -> str:
    return basename(path).removesuffix(".cil")


def pp_name(data: bytes) -> str | None:
    """The module name in a policy package's header, or None when it is not one."""
    if data[:3] == b"BZh":
        try:
            data = bz2.decompress(data)
        except (OSError, ValueError, EOFError):
            return None
    try:
        magic, _version, sections = struct.unpack_from("<III", data, 0)
        if magic != PACKAGE_MAGIC or not 1 <= sections <= 16:
            return None
        (offset,) = struct.unpack_from("<I", data, 12)
        module_magic, length = struct.unpack_from("<II", data, offset)
        if module_magic != MODULE_MAGIC or length != len(MODULE_TEXT):
            return None
        at = offset + 8
        if data[at : at + length] != MODULE_TEXT:
            return None
        at += length
        (policy_type,) = struct.unpack_from("<I", data, at)
        if policy_type == POLICY_BASE:
            return "base"
        if policy_type != POLICY_MOD:
            return None
        at += 20  # type, policy version, config, symbol count, ocontext count
        (size,) = struct.unpack_from("<I", data, at)
        name = data[at + 4 : at + 4 + size]
        if not 0 < size <= MAX_NAME or len(name) != size:
            return None
        return name.decode("ascii")
    except (struct.error, UnicodeDecodeError):
        return None


def module_name(path: str, data: bytes) -> str | None:
    """What semodule will call the module in `path` (None: a .pp that is not a package)."""
    return cil_name(path) if path.endswith(".cil") else pp_name(data)


def image_module_name(path: str) -> str:
    """The name of a module file an installed package put in the image, which is only read in
    the build: its file name without .cil, .pp or .pp.bz2, as packages name them after the
    module (/usr/share/selinux/packages/container.pp.bz2 holds `container`)."""
    name = basename(path)
    for suffix in (".pp.bz2", ".pp", ".cil"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
