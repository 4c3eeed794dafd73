#!/bin/sh
# Reads the configuration a files step of the same layer installed just before this
# script runs (steps: run in the order written), and records what it saw.
set -eu
site=$(sed -n 's/^site=//p' /etc/nc-site/site.conf)
test -n "$site"
printf 'configured for %s in the build\n' "$site" > /etc/nc-site/stamp
