#!/bin/sh
# Build an out-of-tree kernel module against the image's kernel (kernel-devel's
# build tree in the builder image) and leave it in /out.
#   build.sh KERNEL_VERSION SOURCE_DIR
set -eu
kver=$1
src=$2
test -d "/usr/src/kernels/$kver" || {
    echo "build.sh: no build tree for kernel $kver in this builder (install kernel-devel-$kver)" >&2
    exit 1
}
make -C "/usr/src/kernels/$kver" M="$src" modules
mkdir -p /out
cp "$src"/*.ko /out/
