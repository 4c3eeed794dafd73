#!/bin/sh
# nestcustom-health: after a boot into the digest nestcustom-update staged, judge the host
# (the system running within NESTCUSTOM_HEALTH_TIMEOUT seconds, the recipe's checks) and
# report to the FleetLock server (steady-state: digest, ring, health), which releases the
# slot; a failed check rolls back and reboots with the slot still held (the rollback's
# reboot is one of the budget's), and the boot after it reports "rolled-back".
# Settings come from the environment, never evaluated as shell code.
set -u
state=${NESTCUSTOM_STATE:-/var/lib/nestcustom-update}
checks=${NESTCUSTOM_CHECKS:-/usr/lib/nestcustom/health-checks}
app_id=de35106b6ec24688b63afddaa156679b

# @host-values@
log() { printf 'nestcustom-health: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
field() { sed -n "s/^ *\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" | head -n 1; }

# A unit is healthy when active, or a oneshot that ran and succeeded.
unit_ok() {
    systemctl is-active --quiet -- "$1" && return 0
    shown=$(systemctl show -p Type -p Result -p SubState -- "$1" 2>/dev/null)
    case $shown in *Type=oneshot*) ;; *) return 1 ;; esac
    case $shown in *Result=success*) ;; *) return 1 ;; esac
    case $shown in *SubState=dead*) return 0 ;; esac
    return 1
}

# The checks file: `unit NAME`, or `cmd TIMEOUT EXIT N [match]` and then the N words, one
# a line, and with `match` a line holding the extended regular expression its output must
# match (as Python's re.search reads it on the whole output: grep -z reads it as one
# record, an empty output too; unlike Python, . matches a newline there); lines starting
# with # are comments.
run_checks() {
    [ -f "$checks" ] || return 0
    failed=0
    while IFS=' ' read -r kind a b c d; do
        case $kind in
            unit) unit_ok "$a" || { log "unit $a is not active"; failed=1; } ;;
            cmd) set --; i=0
                 while [ "$i" -lt "$c" ] && IFS= read -r word; do
                     set -- "$@" "$(nc_fill "$word")"; i=$((i + 1))
                 done
                 pattern=
                 [ "$d" != match ] || IFS= read -r pattern
                 out=$(timeout "$a" "$@" < /dev/null 2>/dev/null); rc=$?
                 if [ "$rc" != "$b" ]; then
                     log "command $* exited $rc, not $b"; failed=1
                 elif [ -n "$pattern" ] && ! printf '%s\0' "$out" | grep -Ezq -e "$pattern"; then
                     log "command $*: output does not match '$pattern'"; failed=1
                 fi ;;
            ''|'#'*) ;;
            *) log "unknown check $kind"; failed=1 ;;
        esac
    done < "$checks"
    return "$failed"
}

# steady-state with this host's report; a few tries, since it also frees the slot.
report() {
    body="{\"client_params\": {\"id\": \"$id\", \"group\": \"$group\", \"ring\": \"$ring\", \"digest\": \"$1\", \"health\": \"$2\"}}"
    tries=0
    while [ "$tries" -lt 5 ]; do
        code=$(curl -sS -o /dev/null -w '%{http_code}' -X POST \
            -H 'fleet-lock-protocol: true' -H 'Content-Type: application/json' \
            --data "$body" "${base}v1/steady-state") || code=000
        [ "$code" = 200 ] && return 0
        log "steady-state answered $code"
        tries=$((tries + 1))
        sleep "$retry"
    done
    return 1
}

ring=${NESTCUSTOM_RING:-}
group=${NESTCUSTOM_GROUP:-default}
base=${NESTCUSTOM_FLEETLOCK:-}
retry=${NESTCUSTOM_RETRY:-300}
timeout=${NESTCUSTOM_HEALTH_TIMEOUT:-600}
case $ring in ''|*[!a-z0-9-]*) die "NESTCUSTOM_RING is not a ring name: '$ring'" ;; esac
case $group in ''|*[!a-zA-Z0-9.-]*) die "NESTCUSTOM_GROUP is not a FleetLock group: '$group'" ;; esac
case $base in http://*|https://*) ;; *) die "NESTCUSTOM_FLEETLOCK is not an http(s) URL" ;; esac
case $base in *[!A-Za-z0-9._~:/?#@!\&\(\)*+,\;=%-]*) die "NESTCUSTOM_FLEETLOCK has a character a URL cannot" ;; esac
case $base in */) ;; *) base="$base/" ;; esac
case $retry in ''|*[!0-9]*|0) die "NESTCUSTOM_RETRY is not a number of seconds" ;; esac
case $timeout in ''|*[!0-9]*|0) die "NESTCUSTOM_HEALTH_TIMEOUT is not a number of seconds" ;; esac

if [ -f "$state/rolled-back" ]; then
    # The boot after a rollback: the slot taken for the update was kept through the
    # rollback's reboot; the report now says what was rolled back and frees it.
    id=$(systemd-id128 machine-id --app-specific="$app_id") || die "no machine id"
    from=$(head -n 1 "$state/rolled-back")
    log "back from $from after the rollback"
    report "$from" rolled-back || die "the FleetLock server took no report"
    rm -f "$state/rolled-back"
fi
[ -f "$state/staged" ] || exit 0  # no update of ours to judge (anymore)
staged=$(head -n 1 "$state/staged")
booted=$(rpm-ostree status --booted --json | field container-image-reference-digest)
id=$(systemd-id128 machine-id --app-specific="$app_id") || die "no machine id"

if [ "$booted" != "$staged" ]; then
    # The staged deployment did not boot (its finalization never happened): nothing to
    # judge; the slot is given back.
    log "booted $booted, not the staged $staged"
    rm -f "$state/staged"
    report "$booted" not-updated
    exit 1
fi

healthy=true
system=$(timeout "$timeout" systemctl is-system-running --wait 2>/dev/null)
if [ "$system" != running ]; then
    log "the system is ${system:-not up after ${timeout}s}"
    healthy=false
fi
run_checks || healthy=false

if $healthy; then
    rm -f "$state/staged"
    log "healthy on $booted"
    report "$booted" ok || die "the FleetLock server took no report"
    exit 0
fi

log "unhealthy on $booted: rolling back"
printf '%s\n' "$booted" >> "$state/refused"
rm -f "$state/staged"
rpm-ostree rollback || die "rpm-ostree rollback failed"
printf '%s\n' "$booted" > "$state/rolled-back" || die "cannot write $state/rolled-back"
log "rebooting into the rollback; the reboot slot stays taken until it is up"
exec systemctl reboot
