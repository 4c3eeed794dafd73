#!/bin/sh
# nestcustom's signature check, run on the host before anything is staged: by `nestcustom
# deploy` (over SSH, as `sh -c`) and by the host-side updater (/usr/libexec/nestcustom/verify).
# It fetches IMAGE's manifest as the host sees the registry, proves its digest, reads the
# simple signatures from the lookaside (signature-1, -2, ... until one is missing) and runs
# `skopeo standalone-verify` (containers/image's own check: key, manifest digest, signed
# identity) with the keys given; the identity must be of REPOSITORY (contract section 4).
#
# $1 image (REPO@DIGEST) $2 digest $3 lookaside base $4 repository $5 log (DIGEST KEY IDENTITY
# lines, the last 50, which `nestcustom status` reads); then key files, or "data:BASE64" for a
# policy's keyData. Prints one last ==verified N FPR IDENTITY (exit 0), ==unsigned COUNT
# (exit 4) or ==error TEXT (exit 3) line; ==note lines before it.
image=$1 digest=$2 url=${3%/} repo=$4 log=$5; shift 5
tmp=$(mktemp -d) || exit 1
trap 'GNUPGHOME="$tmp/g" gpgconf --kill gpg-agent >/dev/null 2>&1; rm -rf "$tmp"' EXIT
mkdir -m 700 "$tmp/g"; export GNUPGHOME="$tmp/g"
auth_file=${NESTCUSTOM_AUTH:-/etc/ostree/auth.json}
auth=; [ -f "$auth_file" ] && auth=--authfile=$auth_file
if ! skopeo inspect --raw ${auth:+"$auth"} "docker://$image" >"$tmp/manifest" 2>"$tmp/err"; then
  echo "==error the manifest cannot be read: $(tail -n 1 "$tmp/err")"; exit 3
fi
got=sha256:$(sha256sum "$tmp/manifest" | cut -d' ' -f1)
[ "$got" = "$digest" ] || { echo "==error the registry serves $got for $digest"; exit 3; }
for key in "$@"; do
  case $key in
    data:*) printf %s "${key#data:}" | base64 -d >"$tmp/key" ;;
    *) cp "$key" "$tmp/key" 2>"$tmp/err" || { echo "==error the key $key is missing"; exit 3; } ;;
  esac
  gpg --batch --quiet --import "$tmp/key" >/dev/null 2>&1 || { echo "==error the key $key is no GPG key"; exit 3; }
done
fprs=$(gpg --batch --with-colons --list-keys 2>/dev/null | awk -F: '$1=="fpr"{print $10}')
[ -n "$fprs" ] || { echo "==error the policy names no key"; exit 3; }
n=1
while [ "$n" -le 64 ]; do
  sig="$url/${repo#*/}@${digest%%:*}=${digest#*:}/signature-$n"
  case $sig in
    file://*) [ -f "${sig#file://}" ] || break
              cp "${sig#file://}" "$tmp/sig" 2>"$tmp/err" || { echo "==error cannot read $sig"; exit 3; } ;;
    *) code=$(curl -sS -o "$tmp/sig" -w '%{http_code}' "$sig" 2>"$tmp/err") || code=000
       [ "$code" = 404 ] && break
       [ "$code" = 200 ] || { echo "==error the lookaside answered $code for $sig $(tail -n 1 "$tmp/err")"; exit 3; } ;;
  esac
  ident=$(gpg --batch --decrypt "$tmp/sig" 2>/dev/null | sed -n 's/.*"docker-reference" *: *"\([^"]*\)".*/\1/p')
  name=${ident##*/}
  case $name in *@*) base=${ident%@*} ;; *:*) base=${ident%:*} ;; *) base=$ident ;; esac
  for fpr in $fprs; do
    if [ -n "$ident" ] && skopeo standalone-verify "$tmp/manifest" "$ident" "$fpr" "$tmp/sig" >/dev/null 2>&1; then
      if [ "$base" = "$repo" ]; then
        mkdir -p "${log%/*}" && { tail -n 49 "$log" 2>/dev/null; echo "$digest $fpr $ident"; } >"$tmp/log" && cat "$tmp/log" >"$log"
        echo "==verified $n $fpr $ident"; exit 0
      fi
      echo "==note signature-$n is signed for $ident, another repository"
    fi
  done
  n=$((n + 1))
done
echo "==unsigned $((n - 1))"; exit 4
