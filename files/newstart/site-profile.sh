#!/bin/sh
# A login profile naming the system the image was built from.
#   site-profile.sh OS_ID OS_VERSION
set -eu
cat >/etc/profile.d/site.sh <<PROFILE
# Written by nestcustom's build from $1 $2.
export SITE_OS="$1 $2"
PROFILE
chmod 0644 /etc/profile.d/site.sh
