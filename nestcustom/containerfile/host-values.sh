# {{NAME}} in a test command's words, filled on a host as the build filled it in the image
# (build-helper.sh `fact`): the one kernel under /usr/lib/modules, os-release's ID and
# VERSION_ID, rpm's %{dist}, the machine. A value the host cannot give stays as written.
# Sourced text: `deploy --recipe`'s health poll and the updater's health.sh carry it.
nc_fact() {
    case $1 in
        kernel)
            set -- /usr/lib/modules/*/vmlinuz
            [ "$#" -eq 1 ] && [ -e "$1" ] || return 1
            set -- "${1%/vmlinuz}"
            printf '%s' "${1##*/}" ;;
        os.id|os.version)
            if [ "$1" = os.id ]; then set -- ID; else set -- VERSION_ID; fi
            nc_file=/etc/os-release
            [ -r "$nc_file" ] || nc_file=/usr/lib/os-release
            while IFS= read -r nc_line; do
                case $nc_line in
                    "$1="*) nc_line=${nc_line#*=}; nc_line=${nc_line#\"}
                            printf '%s' "${nc_line%\"}"; return 0 ;;
                esac
            done < "$nc_file"
            return 1 ;;
        dist) rpm --eval '%{?dist}' ;;
        arch) uname -m ;;
        *) return 1 ;;
    esac
}
nc_fill() {
    nc_rest=$1 nc_out=
    while :; do
        case $nc_rest in *'{{'*'}}'*) ;; *) break ;; esac
        nc_out=$nc_out${nc_rest%%'{{'*}
        nc_rest=${nc_rest#*'{{'}
        nc_name=${nc_rest%%'}}'*}
        nc_rest=${nc_rest#*'}}'}
        nc_value=$(nc_fact "$nc_name") || nc_value="{{$nc_name}}"
        nc_out=$nc_out$nc_value
    done
    printf '%s' "$nc_out$nc_rest"
}
