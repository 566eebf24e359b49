# shellcheck shell=bash
# tools/private-apt.sh: a private apt configuration, sourced by the scripts
# that fetch Debian packages from a suite the host need not have configured
# (tools/qemu/fetch.sh, tools/nested/qemu/build.sh).
#
# Why: the sources list, the package lists and the download cache all live in
# a directory of the caller's (-o Dir::...), so the host's /etc/apt, its
# package lists and its installed packages stay untouched, and no root is
# needed. The mirror is the one the host's apt already uses for Debian's main
# release (apt-cache policy), so a machine behind a local mirror keeps using it.
#
#   private_apt_init <dir> <suite> [deb-src]
#       writes <dir>/sources.list ("deb" and, with deb-src, "deb-src" lines
#       for <suite> main), makes <dir>/lists and <dir>/cache, and sets
#       private_apt_opts (the -o options for apt-get/apt-cache) and
#       private_apt_mirror. Status 1, with the reason in private_apt_why,
#       when the host's apt names no mirror.
#   private_apt_error <log>
#       the first line of apt's in <log> that says why it failed (E:, else
#       the reason under Err:, else W: Failed to fetch).

private_apt_init() {
    # (local names with a prefix: callers may have readonly variables of these names)
    local pa_dir=$1 pa_suite=$2 pa_src=${3:-} pa_arch pa_signed=
    pa_arch=$(dpkg --print-architecture)
    # e.g. " 500 http://deb.debian.org/debian bookworm/main amd64 Packages"
    private_apt_mirror=$(apt-cache policy 2>/dev/null \
        | awk -v a="$pa_arch" '$3 ~ /^[a-z]+\/main$/ && $4 == a { print $2; exit }')
    if [ -z "$private_apt_mirror" ]; then
        private_apt_why="apt-cache policy names no Debian mirror with a <release>/main $pa_arch index (run apt-get update?)"
        return 1
    fi
    mkdir -p "$pa_dir/lists/partial" "$pa_dir/cache/archives/partial"
    [ ! -f /usr/share/keyrings/debian-archive-keyring.gpg ] \
        || pa_signed=' [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]'
    {
        printf 'deb%s %s %s main\n' "$pa_signed" "$private_apt_mirror" "$pa_suite"
        [ "$pa_src" != deb-src ] || printf 'deb-src%s %s %s main\n' "$pa_signed" "$private_apt_mirror" "$pa_suite"
    } >"$pa_dir/sources.list"
    # _apt cannot write into a private dir; the download then runs as us,
    # which apt reports with a harmless warning. World-writable avoids it.
    chmod -R 0777 "$pa_dir"
    private_apt_opts=(
        -o "Dir::Etc::sourcelist=$pa_dir/sources.list" -o Dir::Etc::sourceparts=-
        -o "Dir::State::Lists=$pa_dir/lists" -o "Dir::Cache=$pa_dir/cache"
    )
}

private_apt_error() {
    awk '/^E: / && e == "" { e = $0 }
        /^Err:/ { if ((getline d) > 0 && r == "") { sub(/^ +/, "", d); r = d } }
        /^W: Failed to fetch/ && w == "" { w = $0 }
        END { print (e != "" ? e : (r != "" ? r : w)) }' "$1"
}
