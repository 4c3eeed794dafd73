#!/bin/sh
# Write the login banner with what the build read from the image.
#   banner.sh OS_VERSION KERNEL   (SITE from the layer's env:)
set -eu
printf 'NestOS %s, kernel %s, site %s (built by nestcustom)\n' "$1" "$2" "${SITE:?}" \
    >/etc/issue.d/nestcustom-ops.issue
