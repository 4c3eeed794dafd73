#!/bin/sh
# nestcustom-update: follow the ring tag by digest, reboot under a FleetLock slot.
# Settings come from the environment (nestcustom-update.service's EnvironmentFile):
# NESTCUSTOM_RING, NESTCUSTOM_FLEETLOCK, NESTCUSTOM_GROUP, NESTCUSTOM_IMAGE (empty: the
# repository the host booted from), NESTCUSTOM_RETRY (seconds between pre-reboot asks).
# No value is ever evaluated as shell code.
set -u
state=${NESTCUSTOM_STATE:-/var/lib/nestcustom-update}
auth_file=${NESTCUSTOM_AUTH:-/etc/ostree/auth.json}
registries_d=${NESTCUSTOM_REGISTRIES_D:-/etc/containers/registries.conf.d}
trust_file=${NESTCUSTOM_TRUST:-/usr/lib/nestcustom/update-trust}
verified_log=${NESTCUSTOM_VERIFIED_LOG:-/var/lib/nestcustom/verified}
# Zincati's application id: the FleetLock id is the one Zincati sends (contract section 3).
app_id=de35106b6ec24688b63afddaa156679b
manifest_types="application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"

log() { printf 'nestcustom-update: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# The first "KEY": "VALUE" of rpm-ostree's JSON on stdin (pretty-printed, a key a line).
field() { sed -n "s/^ *\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" | head -n 1; }
first_bool() { sed -n "s/^ *\"$1\" *: *\\(true\\|false\\).*/\\1/p" | head -n 1; }

is_digest() {
    case $1 in
        sha256:*) hex=${1#sha256:}
                  [ "${#hex}" -eq 64 ] && case $hex in *[!0-9a-f]*) return 1 ;; esac ;;
        *) return 1 ;;
    esac
}

# The repository of an ostree container reference: transport, tag and digest dropped.
repository_of() {
    ref=${1#ostree-unverified-registry:}
    ref=${ref#ostree-image-signed:}
    ref=${ref#ostree-unverified-image:}
    ref=${ref#docker://}
    ref=${ref#registry:}
    ref=${ref%%@*}
    last=${ref##*/}
    case $last in *:*) ref=${ref%:*} ;; esac
    printf '%s\n' "$ref"
}

# Whether registries.conf.d declares HOST insecure (plain HTTP), as in contract section 2.
insecure() {
    for conf in "$registries_d"/*.conf; do
        [ -f "$conf" ] || continue
        loc='' ins=''
        while IFS= read -r line || [ -n "$line" ]; do
            line=$(printf '%s' "$line" | tr -d ' \t')
            case $line in
                '[[registry]]') [ "$loc" = "$1" ] && [ "$ins" = true ] && return 0
                                loc='' ins='' ;;
                location=*) loc=${line#location=}; loc=${loc#\"}; loc=${loc%\"} ;;
                insecure=*) ins=${line#insecure=} ;;
            esac
        done < "$conf"
        [ "$loc" = "$1" ] && [ "$ins" = true ] && return 0
    done
    return 1
}

# Credentials for HOST from auth.json, written as a header file curl reads (-H @FILE), so
# they never appear on a command line.
auth_header() {
    [ -r "$auth_file" ] || return 1
    creds=$(tr -d ' \t\n\r' < "$auth_file" |
        sed -n "s/.*\"$1\":{\"auth\":\"\\([A-Za-z0-9+\\/=]*\\)\".*/\\1/p")
    [ -n "$creds" ] || return 1
    printf 'Authorization: Basic %s\n' "$creds" > "$2"
}

# The digest the registry gives IMAGE:TAG (a manifest HEAD, Docker-Content-Digest).
ring_digest() {
    host=${1%%/*} path=${1#*/} tag=$2
    scheme=https
    insecure "$host" && scheme=http
    url="$scheme://$host/v2/$path/manifests/$tag"
    headers="$work/headers"
    : > "$work/auth"
    auth_header "$host" "$work/auth" || true
    curl -sS -I -o /dev/null -D "$headers" -H "Accept: $manifest_types" \
        -H "@$work/auth" "$url" || return 1
    challenge=$(tr -d '\r' < "$headers" | sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate: *[Bb]earer *//p')
    if [ -n "$challenge" ]; then
        realm=$(printf '%s' "$challenge" | sed -n 's/.*realm="\([^"]*\)".*/\1/p')
        service=$(printf '%s' "$challenge" | sed -n 's/.*service="\([^"]*\)".*/\1/p')
        scope=$(printf '%s' "$challenge" | sed -n 's/.*scope="\([^"]*\)".*/\1/p')
        token=$(curl -sS -G -H "@$work/auth" --data-urlencode "service=$service" \
            --data-urlencode "scope=$scope" "$realm" |
            sed -n 's/.*"\(access_\)\{0,1\}token" *: *"\([^"]*\)".*/\2/p' | head -n 1)
        [ -n "$token" ] || { log "no token from $realm"; return 1; }
        printf 'Authorization: Bearer %s\n' "$token" > "$work/auth"
        curl -sS -I -o /dev/null -D "$headers" -H "Accept: $manifest_types" \
            -H "@$work/auth" "$url" || return 1
    fi
    status=$(head -n 1 "$headers" | cut -d ' ' -f 2)
    [ "$status" = 200 ] || { log "$url answered $status"; return 1; }
    tr -d '\r' < "$headers" | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *//p' | head -n 1
}

# The most specific line of the trust file whose scope covers IMAGE ("TYPE SCOPE LOOKASIDE
# KEY"), or nothing. Recipe scopes are REGISTRY[/NAMESPACE...], never wildcards, and a
# longer scope is a more specific one, as containers/image picks a policy scope.
scope_line() {
    best='' best_length=0
    [ -f "$trust_file" ] || return 0
    while read -r kind scope url key; do
        case $kind in gpg|sigstore) ;; *) continue ;; esac
        case $1 in "$scope"|"$scope"/*) ;; *) continue ;; esac
        if [ "${#scope}" -gt "$best_length" ]; then
            best="$kind $scope $url $key" best_length=${#scope}
        fi
    done < "$trust_file"
    printf '%s\n' "$best"
}

# Whether the host's skopeo checks policy.json for ostree-image-signed: (1.13+, contract
# section 2), as `nestcustom deploy` judges it.
skopeo_enforces() {
    version=$(skopeo --version 2>/dev/null | sed -n 's/^[^0-9]*\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p')
    major=${version% *} minor=${version#* }
    [ -n "$version" ] && { [ "$major" -gt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -ge 13 ]; }; }
}

# The reference to rebase to, once IMAGE@DIGEST is proven as the recipe's signing: asks
# (contract section 4); nothing is staged otherwise. gpg: the host's own check (verify,
# the one `nestcustom deploy` runs), then ostree-image-signed: where skopeo enforces a
# policy that rejects other images, so rpm-ostree checks once more. sigstore: only a
# skopeo that enforces it can check it.
verified_reference() {
    line=$(scope_line "$1")
    policy_default=$(sed -n 's/^default //p' "$trust_file" 2>/dev/null)
    signed_ref="ostree-image-signed:docker://$1@$2"
    if [ -z "$line" ]; then
        [ "$policy_default" = reject ] && {
            log "the image's policy rejects $1: none of its signing scopes covers it"; return 1; }
        printf 'ostree-unverified-registry:%s@%s\n' "$1" "$2"
        return 0
    fi
    kind=${line%% *} rest=${line#* }
    scope=${rest%% *} rest=${rest#* }
    url=${rest%% *} key=${rest#* }
    enforced=false
    skopeo_enforces && [ "$policy_default" = reject ] && enforced=true
    if [ "$kind" = sigstore ]; then
        [ "$enforced" = true ] || {
            log "$1 needs a sigstore signature (scope $scope), which only a skopeo that enforces policy (1.13+) checks, with signing: default: reject"
            return 1; }
        log "sigstore signature of $1@$2: checked by rpm-ostree (ostree-image-signed:)"
        printf '%s\n' "$signed_ref"
        return 0
    fi
    checked=$("${0%/*}/verify" "$1@$2" "$2" "$url" "$1" "$verified_log" "$key")
    last=$(printf '%s\n' "$checked" | sed -n 's/^==//p' | tail -n 1)
    printf '%s\n' "$checked" | sed -n 's/^==note //p' | while read -r note; do log "$note"; done
    case $last in
        "verified "*) log "signature verified (scope $scope): ${last#verified }" ;;
        "unsigned 0") log "$1@$2 has no signature at $url: nothing staged"; return 1 ;;
        "unsigned "*) log "$1@$2 is not signed by a key this host trusts for $1 (${last#unsigned } signature(s) at $url): nothing staged"; return 1 ;;
        *) log "the signature check failed: ${last#error }: nothing staged"; return 1 ;;
    esac
    if [ "$enforced" = true ]; then
        printf '%s\n' "$signed_ref"
    else
        printf 'ostree-unverified-registry:%s@%s\n' "$1" "$2"
    fi
}

# A random pause of RETRY seconds plus up to 10 %, as Zincati's agent ticks.
pause() {
    spread=$(( $1 / 10 ))
    extra=0
    if [ "$spread" -gt 0 ]; then
        extra=$(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % (spread + 1) ))
    fi
    sleep $(( $1 + extra ))
}

# POST /v1/pre-reboot until the server grants a slot (200).
take_slot() {
    body="{\"client_params\": {\"id\": \"$id\", \"group\": \"$group\", \"ring\": \"$ring\"}}"
    while :; do
        code=$(curl -sS -o "$work/answer" -w '%{http_code}' -X POST \
            -H 'fleet-lock-protocol: true' -H 'Content-Type: application/json' \
            --data "$body" "${base}v1/pre-reboot") || code=000
        [ "$code" = 200 ] && return 0
        log "no reboot slot yet ($code $(head -c 300 "$work/answer" 2>/dev/null)); asking again in ${retry}s"
        pause "$retry"
    done
}

ring=${NESTCUSTOM_RING:-}
group=${NESTCUSTOM_GROUP:-default}
base=${NESTCUSTOM_FLEETLOCK:-}
retry=${NESTCUSTOM_RETRY:-300}
case $ring in ''|*[!a-z0-9-]*) die "NESTCUSTOM_RING is not a ring name: '$ring'" ;; esac
case $group in ''|*[!a-zA-Z0-9.-]*) die "NESTCUSTOM_GROUP is not a FleetLock group: '$group'" ;; esac
case $base in http://*|https://*) ;; *) die "NESTCUSTOM_FLEETLOCK is not an http(s) URL" ;; esac
case $base in *[!A-Za-z0-9._~:/?#@!\&\(\)*+,\;=%-]*) die "NESTCUSTOM_FLEETLOCK has a character a URL cannot" ;; esac
case $base in */) ;; *) base="$base/" ;; esac
case $retry in ''|*[!0-9]*|0) die "NESTCUSTOM_RETRY is not a number of seconds" ;; esac

work=$(mktemp -d) || die "no temporary directory"
trap 'rm -rf "$work"' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

booted=$(rpm-ostree status --booted --json) || die "rpm-ostree status failed"
booted_digest=$(printf '%s\n' "$booted" | field container-image-reference-digest)
image=${NESTCUSTOM_IMAGE:-}
if [ -z "$image" ]; then
    image=$(repository_of "$(printf '%s\n' "$booted" | field container-image-reference)")
fi
case $image in
    ''|*[!a-z0-9./:_-]*|*/) die "no image to follow ('$image'): set updates: image: in the recipe" ;;
esac
case $image in */*) ;; *) die "'$image' is not REGISTRY/PATH" ;; esac

digest=$(ring_digest "$image" "ring-$ring") || die "cannot read $image:ring-$ring"
is_digest "$digest" || die "$image:ring-$ring has no usable digest ('$digest')"
if [ "$digest" = "$booted_digest" ]; then
    log "on $image:ring-$ring already ($digest)"
    exit 0
fi
if [ -f "$state/refused" ] && grep -qxF "$digest" "$state/refused"; then
    log "$digest was rolled back on this host: not taken again"
    exit 0
fi

reference=$(verified_reference "$image" "$digest") || exit 1

# A deployment staged earlier (a slot never came) is dropped: the rebase stages anew
# (what is already pulled is not fetched again).
rpm-ostree cleanup -p >/dev/null || die "rpm-ostree cleanup -p failed"
rpm-ostree rebase --experimental --bypass-driver --lock-finalization "$reference" ||
    die "the rebase to $image@$digest failed"
status=$(rpm-ostree status --json) || die "rpm-ostree status failed"
if [ "$(printf '%s\n' "$status" | first_bool staged)" != true ] ||
    [ "$(printf '%s\n' "$status" | field container-image-reference-digest)" != "$digest" ]; then
    die "after the rebase the staged deployment is not $digest"
fi
mkdir -p "$state" || die "cannot create $state"
printf '%s\n' "$digest" > "$state/staged" || die "cannot write $state/staged"
log "staged $image@$digest"

id=$(systemd-id128 machine-id --app-specific="$app_id") || die "no machine id"
take_slot
log "reboot slot taken in group $group; finalizing and rebooting"
# finalize-deployment unlocks the staged deployment and reboots (rpm-ostree's transaction).
exec rpm-ostree finalize-deployment --allow-missing-checksum
