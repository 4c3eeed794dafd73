# nestcustom's build helper: fixed code that RUN steps call through a read-only bind
# mount (it never lands in the image). Recipe strings reach it only as arguments and
# are treated as data: nothing here is evaluated by a shell. POSIX sh, because NestOS
# images have no python3 or perl.
#
#   build.sh exec [--rpms DIR] PROGRAM ARG...   fill in {{value}} tokens in each argument,
#                                     add DIR's listed RPM files (see rpm-list), then exec
#   build.sh clamp [--rpms DIR] PROGRAM ARG...  the same, run as a child; then what it
#                                     stamped with the clock (rpmdb install times, users'
#                                     password dates) fixed, and what it put under /opt moved
#                                     to /usr/lib/opt
#   build.sh rpm-list DIR             list DIR/*/*.rpm as DIR/list: SHA256 NEVRA PATH
#   build.sh facts DIR                write the image's values to DIR/facts (a facts stage)
#   build.sh kmods [--install NAME FILE] [--load NAME] [--options NAME OPTS] --conf NAME
#   build.sh initramfs [DRIVER]... [--add M] [--omit M] [--omit-drivers D] [--install FILE]...
#                                     dracut for the image's kernel, as rpm-ostree needs
#   build.sh check [--host-rules] [--base DIR] [--package P] [--file PATH]...
#   build.sh files [--remove PATH] [--dir PATH MODE] [--copy SRC DEST MODE OWNER]
#                  [--tree SRC DEST OWNER] [--fetch URL SHA256 DEST MODE extract|gunzip|-]
#                  [--link PATH TARGET] [--set FILE SECTION KEY VALUE]...
#                  (OWNER - is root; SECTION - is outside any section)
#   build.sh repos [--enable ID] [--disable ID]...   in the base's /etc/yum.repos.d
#   build.sh remove-matching GLOB...   rpm-ostree override remove of the installed matches
#   build.sh selinux [--nestos] [--priority N] [--module FILE] [--boolean NAME on|off]...
#                  semodule -N -X N -i FILE..., then setsebool -P -N NAME=on|off...
#                  (FILE: a mounted project file, or one an installed package put here)
set -eu

# In a builder stage: the base image's values, copied from the facts stage.
facts_file=/nestcustom-facts/facts

die() {
    printf 'nestcustom: %s\n' "$*" >&2
    exit 1
}

kernel_version() {
    found=
    count=0
    for dir in /usr/lib/modules/*/; do
        [ -e "${dir}vmlinuz" ] || continue
        count=$((count + 1))
        found=${dir%/}
        found=${found##*/}
    done
    [ "$count" -eq 1 ] ||
        die "found $count kernels (a vmlinuz under /usr/lib/modules/*/); {{kernel}} needs exactly one"
    printf '%s' "$found"
}

os_field() {
    file=/etc/os-release
    [ -r "$file" ] || file=/usr/lib/os-release
    [ -r "$file" ] || die "the image has no os-release"
    while IFS= read -r line; do
        case $line in
            "$1="*)
                value=${line#*=}
                value=${value#\"}
                value=${value%\"}
                printf '%s' "$value"
                return 0
                ;;
        esac
    done <"$file"
    die "os-release has no $1"
}

fact() {
    if [ -r "$facts_file" ]; then
        while IFS= read -r line; do
            case $line in
                "$1="*)
                    printf '%s' "${line#*=}"
                    return 0
                    ;;
            esac
        done <"$facts_file"
        die "{{$1}} is not known in the base image"
    fi
    case $1 in
        kernel) kernel_version ;;
        os.id) os_field ID ;;
        os.version) os_field VERSION_ID ;;
        dist) rpm --eval '%{?dist}' 2>/dev/null || true ;;
        arch) uname -m ;;
        *) die "unknown value {{$1}}" ;;
    esac
}

substitute() {
    rest=$1
    out=
    while :; do
        case $rest in
            *'{{'*'}}'*) ;;
            *) break ;;
        esac
        out=$out${rest%%'{{'*}
        rest=${rest#*'{{'}
        name=${rest%%'}}'*}
        rest=${rest#*'}}'}
        value=$(fact "$name")
        out=$out$value
    done
    printf '%s' "$out$rest"
}

rpms_dir=
take_rpms() {
    # --rpms DIR in front of the program: its listed RPM files go after the arguments.
    rpms_dir=
    if [ "${1:-}" = --rpms ]; then
        rpms_dir=$2
        [ -r "$rpms_dir/list" ] || die "no RPM list at $rpms_dir/list: the layer's RPM stage did not run"
    fi
}

cmd_exec() {
    take_rpms "$@"
    [ -z "$rpms_dir" ] || shift 2
    [ $# -gt 0 ] || die "exec: no program"
    for arg do
        shift
        value=$(substitute "$arg")
        set -- "$@" "$value"
    done
    if [ -n "$rpms_dir" ]; then
        while read -r _sum _nevra file; do
            set -- "$@" "$rpms_dir/$file"
        done <"$rpms_dir/list"
    fi
    exec "$@"
}

# -- RPM files from stages and images ---------------------------------------------------------

cmd_rpm_list() {
    # DIR: every DIR/N/*.rpm (one directory per source, copied in by the RPM stage), checked
    # to be a binary RPM rpm can read, listed as "SHA256 NEVRA N/FILE" in DIR/list. The list
    # is COPYed into the image: it names what the layer installs, for `nestcustom test`.
    dir=$1
    : >"$dir/list.new"
    for sub in "$dir"/*/; do
        [ -d "$sub" ] || continue
        found=
        for file in "$sub"*.rpm; do
            [ -f "$file" ] || continue
            found=1
            nevra=$(rpm -qp --nosignature --nodigest --qf '%{NEVRA} %{SOURCERPM}' "$file" 2>/dev/null) ||
                die "${file#"$dir"/} is not an RPM file rpm can read"
            case $nevra in
                *" (none)") die "${file#"$dir"/} is a source RPM, which cannot be installed" ;;
            esac
            sum=$(sha256sum "$file")
            printf '%s %s %s\n' "${sum%% *}" "${nevra%% *}" "${file#"$dir"/}" >>"$dir/list.new"
        done
        [ -n "$found" ] || die "no RPM file in ${sub%/}"
    done
    [ -s "$dir/list.new" ] || die "no RPM files to install"
    sort -k 3 "$dir/list.new" >"$dir/list"
    rm -f "$dir/list.new"
}

# -- /opt: a link to var/opt on an rpm-ostree system ------------------------------------------
#
# rpm-ostree installs straight into / in a container build (libdnf, no path translation:
# contract section 1), so a package's /opt/NAME goes through the /opt -> var/opt link into
# /var, which the host drops (and ostree-ext 0.9.1's commit refuses). As rpm-ostree's own
# importer does for packages it layers (usr/lib/opt/NAME, and a tmpfiles.d link at boot), the
# clamp moves what a command put there to /usr/lib/opt/NAME and links it back at boot.

opt_var=
opt_made=
opt_before() {
    opt_var= opt_made=
    [ -L /opt ] || return 0
    case $(readlink /opt) in
        var/opt | /var/opt | ../var/opt) opt_var=/var/opt ;;
        *) return 0 ;;
    esac
    if [ ! -d "$opt_var" ]; then
        mkdir -p "$opt_var"
        opt_made=1
    fi
    ls -A "$opt_var" >"$clamp_tmp.opt"
}

opt_after() {
    [ -n "$opt_var" ] || return 0
    for entry in "$opt_var"/* "$opt_var"/.[!.]*; do
        [ -e "$entry" ] || [ -L "$entry" ] || continue
        name=${entry##*/}
        ! grep -F -x -q -e "$name" "$clamp_tmp.opt" || continue
        mkdir -p /usr/lib/opt
        if [ -d "/usr/lib/opt/$name" ] && [ -d "$entry" ] && [ ! -L "$entry" ]; then
            cp -a "$entry/." "/usr/lib/opt/$name/" && rm -rf "$entry"
        else
            rm -rf "/usr/lib/opt/$name"
            mv "$entry" "/usr/lib/opt/$name"
        fi
        conf=/usr/lib/tmpfiles.d/nestcustom-opt.conf
        mkdir -p /usr/lib/tmpfiles.d
        line="L /opt/$name - - - - ../../usr/lib/opt/$name"
        [ -f "$conf" ] && grep -F -x -q -e "$line" "$conf" ||
            printf '%s\n' "$line" >>"$conf"
        printf 'nestcustom: /opt/%s moved to /usr/lib/opt/%s, linked back at boot\n' "$name" "$name" >&2
    done
    [ -z "$opt_made" ] || rmdir "$opt_var" 2>/dev/null || true
    rm -f "$clamp_tmp.opt"
}

# -- times: what a package command stamps with the clock, taken from the image instead ----
#
# librpm 4.17 (NestOS 22.03) writes time(NULL) as each package's INSTALLTIME and the
# transaction's INSTALLTID, and ignores SOURCE_DATE_EPOCH; rpm-ostree does not normalize
# them in a container build (contract section 1, "Times"). The same packages on the same
# base would give another rpm database, and another image, at every build. After the
# command, the packages it added get the times rpm-ostree's compose normalization gives
# (one transaction id, install times one second apart in database order), counted from the
# newest time the database held before: a function of the image, never of the clock, and
# later than every package already there. Users it added get the password-change date
# rpm-ostree's compose gives locked accounts (none); others the day of that time.

clamp_tmp=/tmp/nestcustom-clamp.$$
# One line per package, in database order (the order --exportdb writes): a header that
# was not there before has a line that was not there before.
clamp_query='%{DBINSTANCE} %{INSTALLTID} %{NEVRA}\n'

newest_time() {
    # The newest install time or transaction id in the rpm database (0 when it is empty).
    newest=$(rpm -qa --qf '%{INSTALLTIME}\n%{INSTALLTID}\n' | sort -n | tail -n 1)
    printf '%s' "${newest:-0}"
}

put_u32() {
    # FILE OFFSET NUMBER: write NUMBER big-endian at OFFSET, in place.
    octal=
    for shift in 24 16 8 0; do
        octal="$octal\\$(printf '%03o' $(($3 >> shift & 255)))"
    done
    # shellcheck disable=SC2059  # the format is the four bytes, as octal escapes
    printf "$octal" | dd of="$1" bs=1 seek="$2" count=4 conv=notrunc 2>/dev/null
}

stamp_headers() {
    # EXPORT NEWEST-BEFORE NUMBERS: give the headers at NUMBERS (1-based, ascending) one
    # transaction id and install times one second apart, from NEWEST-BEFORE + 1. A header:
    # 8 magic bytes, index length il, data length dl, il 16-byte index entries (tag, type,
    # offset, count), then dl bytes of data. Not run in a subshell: a bad export stops it.
    file=$1
    tid=$(($2 + 1))
    stamp=$tid
    wanted=$3
    size=$(($(wc -c <"$file")))
    pos=0
    number=0
    while [ "$pos" -lt "$size" ]; do
        number=$((number + 1))
        # shellcheck disable=SC2046  # od's numbers, split on purpose
        set -- $(od -An -v -tu4 --endian=big -j "$pos" -N 16 "$file")
        [ "${1:-}" = 2393761793 ] && [ "${2:-}" = 0 ] || # 8e ad e8 01 00 00 00 00
            die "clamp: the rpm database export has no header at byte $pos"
        count=$3
        next=$((pos + 16 + 16 * $3 + $4))
        if [ "${wanted%% *}" = "$number" ]; then
            wanted=${wanted#"$number"}
            wanted=${wanted# }
            data=$((pos + 16 + 16 * count))
            # shellcheck disable=SC2046  # od's numbers, split on purpose
            set -- $(od -An -v -w16 -tu4 --endian=big -j $((pos + 16)) -N $((16 * count)) \
                "$file" | grep -E '^ *(1008|1128) ')
            [ $# -eq 8 ] || die "clamp: package $number of the rpm database has no install time"
            while [ $# -ge 4 ]; do
                case $1 in
                    1008) put_u32 "$file" $((data + $3)) "$stamp" ;;  # RPMTAG_INSTALLTIME
                    1128) put_u32 "$file" $((data + $3)) "$tid" ;;      # RPMTAG_INSTALLTID
                esac
                shift 4
            done
            stamp=$((stamp + 1))
        fi
        pos=$next
    done
    [ -z "$wanted" ] || die "clamp: the rpm database export lacks packages $wanted"
}

clamp_rpmdb() {
    # NEWEST-BEFORE: re-stamp the packages the command added; leave no clock-stamped page.
    db=$(rpm --eval '%{_dbpath}')
    rpm -qa --qf "$clamp_query" >"$clamp_tmp.after"
    added=$(grep -n -v -x -F -f "$clamp_tmp.packages" "$clamp_tmp.after" | cut -d: -f1 |
        tr '\n' ' ')
    added=${added% }
    if [ -n "$added" ]; then
        export=$clamp_tmp.export
        rpmdb --exportdb >"$export" || die "clamp: rpmdb --exportdb failed"
        stamp_headers "$export" "$1" "$added"
        # A fresh database from the export, as rpm-ostree's compose rewrites one: no page
        # keeps a clock-stamped header from the first write.
        find "$db" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
        rpmdb --dbpath "$db" --importdb <"$export" || die "clamp: rpmdb --importdb failed"
        rm -f "$export"
    fi
    rm -f "$clamp_tmp.after"
    # rpm-ostree's list of rpmdb leftovers (lock files), and sqlite's write-ahead log once
    # it is empty: its index (-shm) holds random salts.
    rm -f "$db/.dbenv.lock" "$db/.rpm.lock" "$db"/__db.*
    if [ -e "$db/rpmdb.sqlite-wal" ] && [ ! -s "$db/rpmdb.sqlite-wal" ]; then
        rm -f "$db/rpmdb.sqlite-wal" "$db/rpmdb.sqlite-shm"
    fi
}

clamp_shadow() {
    # NEWEST-BEFORE FILE: entries FILE gained since the snapshot get a fixed change date.
    [ -f "$2" ] && [ -f "$clamp_tmp.shadow" ] || return 0
    day=$((($1 + 1) / 86400))
    rewritten=
    while IFS= read -r line || [ -n "$line" ]; do
        if grep -F -x -q -e "$line" "$clamp_tmp.shadow"; then
            printf '%s\n' "$line"
            continue
        fi
        name=${line%%:*}
        rest=${line#*:}
        password=${rest%%:*}
        rest=${rest#*:}
        rest=${rest#*:} # the old change date
        case $password in
            '!'* | '*'*) changed= ;;
            *) changed=$day ;;
        esac
        [ "$name:$password:$changed:$rest" = "$line" ] || rewritten=1
        printf '%s:%s:%s:%s\n' "$name" "$password" "$changed" "$rest"
    done <"$2" >"$clamp_tmp.new"
    # Written in place (mode, owner and inode stay), and only when a date changed.
    [ -z "$rewritten" ] || cat "$clamp_tmp.new" >"$2"
    rm -f "$clamp_tmp.new"
}

cmd_clamp() {
    take_rpms "$@"
    [ -z "$rpms_dir" ] || shift 2
    [ $# -gt 0 ] || die "clamp: no program"
    for arg do
        shift
        value=$(substitute "$arg")
        set -- "$@" "$value"
    done
    if [ -n "$rpms_dir" ]; then
        while read -r _sum _nevra file; do
            set -- "$@" "$rpms_dir/$file"
        done <"$rpms_dir/list"
    fi
    before=$(newest_time)
    rpm -qa --qf "$clamp_query" >"$clamp_tmp.packages"
    [ ! -f /etc/shadow ] || cp /etc/shadow "$clamp_tmp.shadow"
    opt_before
    status=0
    "$@" || status=$?
    if [ "$status" -eq 0 ]; then
        clamp_rpmdb "$before"
        clamp_shadow "$before" /etc/shadow
        clamp_shadow "$before" /etc/shadow-
        opt_after
    elif [ -n "$opt_made" ]; then
        rm -rf "$opt_var"
    fi
    rm -f "$clamp_tmp.packages" "$clamp_tmp.shadow"
    return "$status"
}

cmd_facts() {
    facts_file=  # read from this image, never from a facts file
    mkdir -p "$1"
    : >"$1/facts"
    for name in kernel os.id os.version dist arch; do
        if value=$(fact "$name" 2>/dev/null); then
            printf '%s=%s\n' "$name" "$value" >>"$1/facts"
        fi
    done
}

cmd_kmods() {
    kver=$(kernel_version)
    extra=/usr/lib/modules/$kver/extra
    conf=
    names=
    while [ $# -gt 0 ]; do
        case $1 in
            --install)
                mkdir -p "$extra"
                install -m 0644 "$3" "$extra/${3##*/}"
                names="$names $2"
                shift 3
                ;;
            --load)
                mkdir -p /usr/lib/modules-load.d
                printf '%s\n' "$2" >>"/usr/lib/modules-load.d/nestcustom-$conf.conf"
                names="$names $2"
                shift 2
                ;;
            --options)
                mkdir -p /usr/lib/modprobe.d
                options=$(substitute "$3")
                printf 'options %s %s\n' "$2" "$options" >>"/usr/lib/modprobe.d/nestcustom-$conf.conf"
                names="$names $2"
                shift 3
                ;;
            --conf)
                conf=$2
                shift 2
                ;;
            *) die "kmods: unknown option $1" ;;
        esac
    done
    depmod -a "$kver"
    for name in $names; do
        modinfo -k "$kver" -F filename "$name" >/dev/null 2>&1 ||
            die "kernel module $name is not there for kernel $kver: install it with src: or the RPM that ships it"
    done
}

cmd_initramfs() {
    kver=$(kernel_version)
    drivers=
    # Each OPTION VALUE pair moves to the end of "$@", one argument each: a path reaches
    # dracut as the recipe wrote it, never split on blanks nor matched as a glob (the
    # schema refuses blanks and glob characters too; this does not rely on it).
    n=$#
    while [ "$n" -gt 0 ]; do
        case $1 in
            --add | --omit | --omit-drivers | --install)
                [ "$n" -ge 2 ] || die "initramfs: $1 needs a value"
                set -- "$@" "$1" "$2"
                shift 2
                n=$((n - 2))
                ;;
            *)
                drivers="$drivers $1"
                shift
                n=$((n - 1))
                ;;
        esac
    done
    if [ -n "$drivers" ]; then
        set -- --no-hostonly --kver "$kver" --reproducible --add ostree -f --add-drivers "${drivers# }" "$@"
    else
        set -- --no-hostonly --kver "$kver" --reproducible --add ostree -f "$@"
    fi
    dracut "$@" "/usr/lib/modules/$kver/initramfs.img"
    chmod 0600 "/usr/lib/modules/$kver/initramfs.img"
}

owned() {
    # chown unless the owner is root's default ("-"); -h: a link itself, never its target.
    [ "$1" = - ] || chown -R -h "$1" "$2"
}

parent() {
    dir=${1%/*}
    [ -z "$dir" ] || mkdir -p "$dir"
}

# A download that stalls (no byte for this many seconds) fails; a connection that breaks
# (reset, refused, cut short, a 5xx) is tried again after 1, 2 and 4 s. The variable is
# for the helper's own tests: a RUN step sees no environment from the host.
stall_seconds=${NESTCUSTOM_STALL_SECONDS:-60}

secret_credentials() {
    # SECRET-FILE: its USER:PASSWORD (one line) in $cred. A build secret is mounted for its
    # step only; what it holds is never printed, and never written anywhere kept.
    [ -r "$1" ] || die "no build secret at $1: pass it with nestcustom build --secret id=${1##*/},src=FILE"
    cred=
    IFS= read -r cred <"$1" || [ -n "$cred" ] || die "the build secret ${1##*/} is empty"
    case $cred in
        ?*:*) ;;
        *) die "the build secret ${1##*/} is not USER:PASSWORD on one line" ;;
    esac
}

curl_auth=
download() {
    # URL FILE; with $curl_auth set, curl reads the credentials from that config file
    delay=1
    attempt=1
    while :; do
        status=0
        curl -fsSL --connect-timeout 30 --speed-limit 1 --speed-time "$stall_seconds" \
            ${curl_auth:+-K "$curl_auth"} -o "$2" "$1" 2>"$2.err" || status=$?
        [ "$status" -ne 0 ] || {
            rm -f "$2.err"
            return 0
        }
        said=$(tr '\n' ' ' <"$2.err")
        said=${said#curl: }
        said=${said% }
        rm -f "$2" "$2.err"
        case $status:$said in
            28:*"too slow"*)
                die "download of $1 stalled: no data for $stall_seconds s; is the server (or a proxy) hanging? Try again, or use a mirror (build --download-mirror)"
                ;;
            22:*"error: 5"* | 7:* | 18:* | 28:* | 35:* | 52:* | 55:* | 56:* | 92:*) ;;
            6:*) die "cannot download $1: $said; check the host name, and that the build can resolve it (a RUN step uses the host's network)" ;;
            *) die "cannot download $1: $said" ;;
        esac
        [ "$attempt" -lt 4 ] ||
            die "cannot download $1: $said (after $attempt attempts); check the server, or use a mirror (build --download-mirror)"
        printf 'nestcustom: download of %s broke (%s); trying again in %s s\n' "$1" "$said" "$delay" >&2
        sleep "$delay"
        delay=$((delay * 2))
        attempt=$((attempt + 1))
    done
}

fetch() {
    # Download, check the pinned sha256, then place or unpack: nothing unverified is used.
    tmp=/tmp/nestcustom-download.$$
    download "$1" "$tmp"
    got=$(sha256sum "$tmp")
    got=${got%% *}
    if [ "$got" != "$2" ]; then
        rm -f "$tmp"
        die "$1 has sha256 $got; the recipe pins $2"
    fi
    if [ "$5" = extract ]; then
        mkdir -p "$3"
        tar -x -f "$tmp" -C "$3" --no-same-owner || die "$1 is not a tar archive tar can unpack"
        rm -f "$tmp"
    elif [ "$5" = gunzip ]; then
        parent "$3"
        gzip -d -c "$tmp" >"$3.nestcustom" || {
            rm -f "$tmp" "$3.nestcustom"
            die "$1 is not a gzip-compressed file gzip can decompress"
        }
        rm -f "$tmp"
        mv "$3.nestcustom" "$3"
        chmod "$4" "$3"
    else
        parent "$3"
        mv "$tmp" "$3"
        chmod "$4" "$3"
    fi
}

key_of() {
    # The key of a KEY=VALUE line, blanks around it trimmed; empty for other lines.
    case $1 in
        *=*) ;;
        *) return 0 ;;
    esac
    key=${1%%=*}
    key=${key#"${key%%[![:space:]]*}"}
    printf '%s' "${key%"${key##*[![:space:]]}"}"
}

set_key() {
    # FILE SECTION KEY VALUE: replace KEY's line in SECTION (- for the lines before the
    # first [section]), or add it at the end of SECTION (made at the end of the file when
    # the file has none). The file is rewritten in place (cat >), so its mode, owner and
    # inode stay.
    file=$(readlink -f "$1") || die "edits: $1 does not exist in the image"
    [ -f "$file" ] || die "edits: $1 does not exist in the image"
    inside=
    [ "$2" != - ] || inside=1
    done=
    tmp=/tmp/nestcustom-edit.$$
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
            "["*"]")
                if [ -n "$inside" ] && [ -z "$done" ]; then
                    printf '%s=%s\n' "$3" "$4" # SECTION (or the top) ends here
                    done=1
                fi
                inside=
                [ "$line" != "[$2]" ] || inside=1
                printf '%s\n' "$line"
                continue
                ;;
        esac
        if [ -n "$inside" ] && [ -z "$done" ] && [ "$(key_of "$line")" = "$3" ]; then
            printf '%s=%s\n' "$3" "$4"
            done=1
            continue
        fi
        printf '%s\n' "$line"
    done <"$file" >"$tmp"
    if [ -z "$done" ]; then
        if [ -n "$inside" ]; then
            printf '%s=%s\n' "$3" "$4" >>"$tmp"
        elif [ "$2" != - ]; then
            printf '\n[%s]\n%s=%s\n' "$2" "$3" "$4" >>"$tmp"
        fi
    fi
    cat "$tmp" >"$file"
    rm -f "$tmp"
}

cmd_files() {
    while [ $# -gt 0 ]; do
        case $1 in
            --remove)
                rm -rf "$2"
                shift 2
                ;;
            --dir)
                mkdir -p "$2"
                chmod "$3" "$2"
                shift 3
                ;;
            --copy)
                parent "$3"
                cp "$2" "$3"
                chmod "$4" "$3"
                owned "$5" "$3"
                shift 5
                ;;
            --tree)
                # Modes as in the project (umask 022 applies), links copied as links.
                mkdir -p "$3"
                cp -R -P "$2/." "$3/"
                owned "$4" "$3"
                shift 4
                ;;
            --fetch)
                fetch "$2" "$3" "$4" "$5" "$6"
                shift 6
                ;;
            --fetch-auth)
                # SECRET-FILE URL SHA256 DEST MODE EXTRACT: HTTP basic auth from the secret,
                # through a curl config file (never on a command line) removed at once.
                secret_credentials "$2"
                curl_auth=/tmp/nestcustom-curl-auth.$$
                trap 'rm -f "$curl_auth"' EXIT # also when the download dies
                (umask 077 && printf 'user = "%s"\n' \
                    "$(printf '%s' "$cred" | sed 's/[\\"]/\\&/g')" >"$curl_auth")
                cred=
                fetch "$3" "$4" "$5" "$6" "$7"
                rm -f "$curl_auth"
                trap - EXIT
                curl_auth=
                shift 7
                ;;
            --set)
                set_key "$2" "$3" "$4" "$5"
                shift 5
                ;;
            --link)
                parent "$2"
                ln -sfn -- "$3" "$2"
                shift 3
                ;;
            *) die "files: unknown option $1" ;;
        esac
    done
}

set_enabled() {
    # Set enabled=$2 in the section [$1] of whichever .repo file has it; the section's
    # other lines stay as they are. Read and written line by line: no value is evaluated.
    found=
    for file in /etc/yum.repos.d/*.repo; do
        [ -e "$file" ] || continue
        grep -q -F -x "[$1]" "$file" || continue
        found=1
        section=
        while IFS= read -r line || [ -n "$line" ]; do
            case $line in
                "["*"]")
                    section=$line
                    printf '%s\n' "$line"
                    [ "$section" != "[$1]" ] || printf 'enabled=%s\n' "$2"
                    continue
                    ;;
            esac
            if [ "$section" = "[$1]" ]; then
                case $line in
                    enabled=* | "enabled "*) continue ;;
                esac
            fi
            printf '%s\n' "$line"
        done <"$file" >"$file.nestcustom"
        mv "$file.nestcustom" "$file"
    done
    [ -n "$found" ] || die "repo $1 is not in any /etc/yum.repos.d/*.repo of the base"
}

cmd_repos() {
    while [ $# -gt 0 ]; do
        case $1 in
            --enable) set_enabled "$2" 1 ;;
            --disable) set_enabled "$2" 0 ;;
            *) die "repos: unknown option $1" ;;
        esac
        shift 2
    done
}

cmd_remove_matching() {
    # The shell matches each glob against the installed names: `rpm -qa PATTERN` takes a
    # regular expression with only . + * rewritten, so `?` there means "optional", and a
    # pattern regcomp refuses (a leading ?) lists every package (contract, section 1).
    installed=$(rpm -qa --qf '%{NAME}\n')
    names=
    for glob do
        found=
        for name in $installed; do # RPM names hold no blanks: split on purpose
            # shellcheck disable=SC2254 # $glob is the pattern, unquoted on purpose
            case $name in $glob) found="$found $name" ;; esac
        done
        [ -n "$found" ] || die "no installed package matches '$glob'"
        names="$names $found"
    done
    # Names are RPM names (no blanks, no glob characters): split on white space on purpose.
    # shellcheck disable=SC2086
    set -- $(printf '%s\n' $names | sort -u)
    cmd_clamp rpm-ostree override remove "$@"
}

failures=0
fail() {
    printf 'nestcustom check: %s\n' "$*" >&2
    failures=$((failures + 1))
}

in_base() {
    # A path the base image already has, as the same kind of thing: not the recipe's doing.
    [ -n "$base" ] || return 1
    if [ -L "$1" ]; then
        [ -L "$base$1" ] && [ "$(readlink "$base$1")" = "$(readlink "$1")" ]
    else
        [ -e "$base$1" ]
    fi
}

check_host_rules() {
    # /usr/local is /var/usrlocal on a NestOS host: what is put here is dropped.
    if [ -d /usr/local ] && [ ! -L /usr/local ]; then
        find /usr/local -xdev -mindepth 1 ! -type d >/tmp/nestcustom-found 2>/dev/null || true
        while IFS= read -r path; do
            in_base "$path" || fail "$path: /usr/local is /var/usrlocal on a NestOS host; the host drops it"
        done </tmp/nestcustom-found
    fi
    # /var is the host's own: files here never reach it (the commit cleans only caches).
    find /var -xdev ! -type d ! -path '/var/cache/*' ! -path '/var/tmp/*' >/tmp/nestcustom-found 2>/dev/null || true
    while IFS= read -r path; do
        in_base "$path" || fail "$path: a NestOS host drops /var content; create it at boot (tmpfiles.d)"
    done </tmp/nestcustom-found
    # Symlinks that point nowhere, unless they point into the host's own trees.
    find /usr /etc -xdev -type l >/tmp/nestcustom-found 2>/dev/null || true
    while IFS= read -r link; do
        [ -e "$link" ] && continue
        case $(readlink "$link") in
            /var/* | /run/* | /proc/* | /sys/* | /dev/* | /tmp/* | /sysroot/* | /boot/* | /home/* | /root/* | /srv/* | /mnt/* | /media/* | /opt/*) continue ;;
        esac
        in_base "$link" || fail "$link -> $(readlink "$link"): the symlink points nowhere"
    done </tmp/nestcustom-found
    # Kernel modules the image added: every module they depend on must be there.
    for dir in /usr/lib/modules/*/; do
        [ -e "${dir}vmlinuz" ] || continue
        kver=${dir%/}
        kver=${kver##*/}
        find "${dir}extra" "${dir}updates" -name '*.ko*' >/tmp/nestcustom-found 2>/dev/null || true
        while IFS= read -r module; do
            depends=$(modinfo -F depends "$module" 2>/dev/null) || {
                fail "$module: not a kernel module modinfo can read"
                continue
            }
            for dep in $(printf '%s' "$depends" | tr ',' ' '); do
                modinfo -k "$kver" -F filename "$dep" >/dev/null 2>&1 ||
                    fail "$module needs module $dep, which kernel $kver does not have"
            done
        done </tmp/nestcustom-found
    done
    rm -f /tmp/nestcustom-found
}

# The SELinux policy store semodule and setsebool write: STORE-ROOT/TYPE, where
# semanage.conf's store-root= (default /var/lib/selinux) and /etc/selinux/config's
# SELINUXTYPE= say. rpm-ostree's compose moves it to /etc/selinux (store-root=/etc/selinux,
# rpmostree-postprocess.cxx), so on NestOS it reaches the host with /etc.
selinux_store() {
    type=
    [ -r /etc/selinux/config ] &&
        type=$(sed -n 's/^[[:space:]]*SELINUXTYPE[[:space:]]*=[[:space:]]*"\{0,1\}\([^"[:space:]]*\).*/\1/p' /etc/selinux/config | tail -n 1)
    [ -n "$type" ] ||
        die "selinux: /etc/selinux/config names no SELINUXTYPE: the image has no SELinux policy"
    root=
    [ -r /etc/selinux/semanage.conf ] &&
        root=$(sed -n 's/^[[:space:]]*store-root[[:space:]]*=[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/selinux/semanage.conf | tail -n 1)
    printf '%s/%s' "${root:-/var/lib/selinux}" "$type"
}

cmd_selinux() {
    set -f  # $booleans is split into NAME=0|1 words on purpose; nothing here is ever globbed
    nestos= priority=400 modules= booleans=
    # Each module moves to the end of "$@" as `-i FILE`, one argument each: a path reaches
    # semodule as the recipe wrote it, never split on blanks (the schema refuses them too).
    n=$#
    while [ "$n" -gt 0 ]; do
        case $1 in
            --nestos) nestos=1; shift; n=$((n - 1)) ;;
            --priority) priority=$2; shift 2; n=$((n - 2)) ;;
            --module)
                case $2 in
                    /run/nestcustom/*) ;;
                    *) [ -f "$2" ] || die "selinux: the image has no $2: install the package that ships it in an earlier layer" ;;
                esac
                modules=1
                set -- "$@" -i "$2"
                shift 2
                n=$((n - 2))
                ;;
            --boolean)
                case $3 in
                    on) booleans="$booleans $2=1" ;;
                    off) booleans="$booleans $2=0" ;;
                    *) die "selinux: boolean $2: $3 is neither on nor off" ;;
                esac
                shift 3
                n=$((n - 3))
                ;;
            *) die "selinux: unknown option $1" ;;
        esac
    done
    for tool in ${modules:+semodule} ${booleans:+setsebool}; do
        command -v "$tool" >/dev/null 2>&1 ||
            die "selinux: the image has no $tool: install policycoreutils in a layer, or build on a base that has it"
    done
    store=$(selinux_store)
    [ -d "$store/active" ] ||
        die "selinux: no policy store at $store/active: install the image's policy (e.g. selinux-policy-targeted) in a layer first"
    if [ -n "$nestos" ]; then
        case $store in
            /etc/*) ;;
            *) die "selinux: the policy store is $store, which a NestOS host drops; rpm-ostree images keep it in /etc/selinux (store-root=/etc/selinux in /etc/selinux/semanage.conf)" ;;
        esac
    fi
    # libsemanage commits by renaming active -> previous and tmp -> active. On a container
    # build's overlayfs a directory of a lower layer cannot be renamed (EXDEV; libsemanage
    # before 3.4 fails, later ones fall back to copying, which can fail with "Directory not
    # empty"). Moving it once copies it into this layer (coreutils mv copies on EXDEV),
    # and in the same RUN the renames stay within one layer (the documented workaround:
    # coreos/layering-examples selinux, SELinuxProject/selinux#343).
    mv "$store/active" "$store/active.nestcustom"
    mv "$store/active.nestcustom" "$store/active"
    # -N: no policy reload; SELinux is off in a build, and the host loads the policy at boot.
    if [ -n "$modules" ]; then
        # The trace in one write: podman hands a RUN's output on in the pieces written, so a
        # line printed in parts would reach the build log as several.
        trace="+ semodule -N -X $priority"
        for arg do
            case $arg in
                *[[:space:]]*) trace="$trace '$arg'" ;;
                *) trace="$trace $arg" ;;
            esac
        done
        printf '%s\n' "$trace" >&2
        semodule -N -X "$priority" "$@" ||
            die "selinux: semodule could not install the modules (its messages are above)"
    fi
    if [ -n "$booleans" ]; then
        printf '+ setsebool -P -N%s\n' "$booleans" >&2
        # shellcheck disable=SC2086  # $booleans: NAME=0|1 words, names checked by the schema
        setsebool -P -N $booleans ||
            die "selinux: setsebool could not set the booleans (its messages are above); each must be defined by the image's policy or by one of the recipe's modules"
    fi
    # Lock files libsemanage leaves in the store; rpm-ostree's compose removes them too.
    rm -f "$store/semanage.read.LOCK" "$store/semanage.trans.LOCK"
}

cmd_check() {
    base=
    host_rules=
    while [ $# -gt 0 ]; do
        case $1 in
            --host-rules) host_rules=1; shift ;;
            --base) base=$2; shift 2 ;;
            --package)
                rpm -q --quiet "$2" || fail "package $2 is not installed"
                shift 2
                ;;
            --file)
                [ -e "$2" ] || [ -L "$2" ] || fail "$2 does not exist"
                shift 2
                ;;
            *) die "check: unknown option $1" ;;
        esac
    done
    [ -z "$host_rules" ] || check_host_rules
    [ "$failures" -eq 0 ] || die "$failures check(s) failed; no image was tagged"
}

[ $# -gt 0 ] || die "usage: build.sh exec|clamp|rpm-list|facts|kmods|initramfs|check|files|repos|remove-matching|selinux ..."
command=$1
shift
cmd_repo_auth() {
    # SRC SECRET-FILE TARGET: the repo file SRC (one repo) with the secret's USER:PASSWORD
    # as its username= and password=, at TARGET, readable by root only. The layer's step
    # removes TARGET before it commits: the credentials never land in the image.
    secret_credentials "$2"
    (umask 077 && {
        cat "$1"
        printf 'username=%s\npassword=%s\n' "${cred%%:*}" "${cred#*:}"
    } >"$3") || die "cannot write $3"
    cred=
}

case $command in
    exec) cmd_exec "$@" ;;
    repo-auth) cmd_repo_auth "$@" ;;
    clamp) cmd_clamp "$@" ;;
    rpm-list) cmd_rpm_list "$@" ;;
    facts) cmd_facts "$@" ;;
    kmods) cmd_kmods "$@" ;;
    initramfs) cmd_initramfs "$@" ;;
    check) cmd_check "$@" ;;
    files) cmd_files "$@" ;;
    repos) cmd_repos "$@" ;;
    remove-matching) cmd_remove_matching "$@" ;;
    selinux) cmd_selinux "$@" ;;
    *) die "unknown command $command" ;;
esac
