#!/bin/sh
# Package /out/nc_demo.ko for one kernel as an RPM in /out/rpms (a builder stage's last step).
#   package.sh KERNEL_VERSION SPEC
set -eu
kver=$1
spec=$2
mkdir -p /out/rpms
rpmbuild -bb \
    --define "_topdir /tmp/rpmbuild" \
    --define "_rpmdir /out/rpms" \
    --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
    --define "_build_id_links none" \
    --define "__os_install_post %{nil}" \
    --define "debug_package %{nil}" \
    --define "kver $kver" \
    "$spec"
ls /out/rpms
