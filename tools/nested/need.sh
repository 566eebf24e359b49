# shellcheck shell=bash
# Sourced by tools/nested/kvm/build.sh and tools/nested/qemu/build.sh: their
# prerequisites, one check each. When one is missing and we are root,
# tools/deps.sh installs the caller's whole group ($need_group); otherwise the
# error says the apt-get line. Uses the caller's die() and $project_root.

need() { # need <test command...> -- <what is missing> <debian package>
    local t=() what pkg
    while [ "$1" != -- ]; do t+=("$1"); shift; done
    what=$2 pkg=$3
    "${t[@]}" && return 0
    if [ "$(id -u)" -ne 0 ]; then
        die "missing $what; install it with: sudo apt-get install -y $pkg"
    fi
    "$project_root/tools/deps.sh" "$need_group" >&2 && "${t[@]}" \
        || die "missing $what (Debian package $pkg), and tools/deps.sh $need_group did not install it: apt-get install -y $pkg"
}
has_cmd() { command -v "$1" >/dev/null 2>&1; }
has_pkg() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
need_tool() { need has_cmd "$1" -- "'$1'" "$2"; } # need_tool <command> <debian package>
need_pkg() { need has_pkg "$1" -- "$1" "$1"; }     # need_pkg <library package>
need_file() { need test -e "$1" -- "$1" "$2"; }    # need_file <path> <debian package>
