#!/usr/bin/env bash
# Test LXD daemon for the integration tests: our own daemon in its own LXD_DIR, a
# NAT-less bridge, a dir pool on tmpfs and a cached Debian runner image.
#
#   scripts/testbed.sh up      install what is missing, start (or reuse) everything
#   scripts/testbed.sh down    stop our daemon, remove what it left in the kernel
#   scripts/testbed.sh down --purge   also forget the daemon's state and the pool tmpfs
#   scripts/testbed.sh env     print `export` lines for tests (eval "$(... env)")
#   scripts/testbed.sh pid     print our daemon's pid (exit 1 if it is not running)
#   scripts/testbed.sh start   start the daemon alone (or reuse it) and wait until it
#                              answers: for fault tests that stop it by its pid
#
# Every step checks before it acts, so a re-run after a crash or a half-finished run
# reuses what is there or replaces it cleanly. Must run as root.
#
# Environment: GHR_TESTBED_DIR (default /var/lib/ghr-testbed; pid file and saved
# ip_forward under /run/<its basename>), GHR_TESTBED_BRIDGE (ghrbr0),
# GHR_TESTBED_BRIDGE_ADDR (10.216.1.1/24), GHR_POOL_SIZE (tmpfs size, 6G),
# GHR_TESTBED_SUBUID / GHR_TESTBED_SUBGID (/etc/subuid, /etc/subgid).
# Image cache: /var/cache/github-runner/image (base.tar = debootstrap result,
# rootfs.tar + metadata.tar.gz = the image, stamp = recipe hash, fingerprint); the
# image's recipe, build and import are in scripts/testbed-image.sh, sourced below.
set -euo pipefail

# The defaults are the shared test address plan. The overrides exist so the script
# can test itself on a second daemon without disturbing the first.
STATE_DIR=${GHR_TESTBED_DIR:-/var/lib/ghr-testbed}
RUN_DIR=/run/$(basename "$STATE_DIR")
TESTBED_LXD_DIR=$STATE_DIR/lxd
PID_FILE=$RUN_DIR/lxd.pid
FORWARD_FILE=$RUN_DIR/ip_forward.orig
LOG_FILE=$STATE_DIR/lxd.log
POOL_DIR=$STATE_DIR/pool
POOL_SIZE=${GHR_POOL_SIZE:-6G}
IMAGE_DIR=/var/cache/github-runner/image
IMAGE_ALIAS=ghr-runner
BRIDGE=${GHR_TESTBED_BRIDGE:-ghrbr0}
BRIDGE_ADDR=${GHR_TESTBED_BRIDGE_ADDR:-10.216.1.1/24}
POOL=ghr-pool
GUARD_ROUTE=10.216.0.0/13
SUBUID_FILE=${GHR_TESTBED_SUBUID:-/etc/subuid}
SUBGID_FILE=${GHR_TESTBED_SUBGID:-/etc/subgid}
# LXD gives each container with security.idmap.isolated a block of 65536 of root's
# subordinate ids, after one block for the shared map: room for 128 such runners.
SUBID_WANT=$((65536 * 129))
# jq reads LXD's JSON answers; procps gives pgrep.
PACKAGES=(lxd lxd-client nftables dnsmasq-base debootstrap jq procps)

log() { printf '[testbed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
now() { date +%s.%N; }
# Prints "<step>: <seconds>s" for a step that started at $1.
timing() { awk -v a="$1" -v b="$(now)" -v n="$2" 'BEGIN { printf "[testbed] timing %-14s %6.2fs\n", n, b - a }' >&2; }

lxdc() { LXD_DIR=$TESTBED_LXD_DIR lxc "$@"; }

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Our daemon's pid, if the pid file names a live lxd process (a stale file or a
# reused pid belonging to something else yields nothing).
daemon_pid() {
    [ -f "$PID_FILE" ] || return 1
    local pid
    pid=$(cat "$PID_FILE")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q '^lxd ' || return 1
    # Another lxd (Debian's own, a self-test) is not ours: check its LXD_DIR too.
    tr '\0' '\n' <"/proc/$pid/environ" | grep -qx "LXD_DIR=$TESTBED_LXD_DIR" || return 1
    echo "$pid"
}

socket_answers() {
    [ -S "$TESTBED_LXD_DIR/unix.socket" ] \
        && LXD_DIR=$TESTBED_LXD_DIR timeout 10 lxc query /1.0 >/dev/null 2>&1
}

# A fresh tmpfs means the daemon's database describes a pool that no longer exists:
# start that daemon from scratch rather than repair it (images come back from cache).
ensure_pool_mount() {
    mkdir -p "$POOL_DIR"
    if mountpoint -q "$POOL_DIR"; then
        return 0
    fi
    if [ -e "$TESTBED_LXD_DIR/database" ]; then
        log "pool tmpfs is gone: resetting daemon state in $TESTBED_LXD_DIR"
        rm -rf "$TESTBED_LXD_DIR"
    fi
    mount -t tmpfs -o "size=$POOL_SIZE,mode=0711" ghr-pool "$POOL_DIR"
}

start_daemon() {
    local pid
    mkdir -p "$RUN_DIR" "$TESTBED_LXD_DIR"
    chmod 0711 "$TESTBED_LXD_DIR"
    if pid=$(daemon_pid); then
        if socket_answers; then
            log "reusing daemon pid $pid"
            return 0
        fi
        # Alive but deaf: maybe still starting; waitready below decides.
        log "daemon pid $pid alive, socket not answering yet"
    elif socket_answers; then
        # Started by hand or the pid file was lost: use it, but `down` cannot stop it.
        log "a daemon answers on $TESTBED_LXD_DIR/unix.socket without our pid file: reusing it"
        return 0
    else
        rm -f "$PID_FILE"
        log "starting lxd (LXD_DIR=$TESTBED_LXD_DIR, log $LOG_FILE)"
        # Without the descriptors we inherited: started under `flock /tmp/ghr-lxd.lock`
        # (a fault test starting the daemon again), the daemon would hold that lock
        # for as long as it runs and every other test would wait for it forever.
        (
            for fd in /proc/"$BASHPID"/fd/*; do
                fd=${fd##*/}
                [ "$fd" -gt 2 ] && eval "exec $fd>&-"
            done
            LXD_DIR=$TESTBED_LXD_DIR exec setsid lxd --group root --logfile "$LOG_FILE" \
                </dev/null >>"$LOG_FILE.stdout" 2>&1
        ) &
        echo $! >"$PID_FILE"
    fi
    LXD_DIR=$TESTBED_LXD_DIR lxd waitready --timeout 60 \
        || die "lxd not ready after 60s, see $LOG_FILE"
}

# Whether root's range in file $1 is large enough. LXD uses root's first entry of at
# least 65536 ids and ignores the rest.
root_subids_ok() {
    [ -f "$1" ] || return 1
    awk -F: -v want="$SUBID_WANT" '
        $1 == "root" && $3 >= 65536 { found = 1; ok = ($3 >= want); exit }
        END { exit !(found && ok) }' "$1"
}

# Gives root LXD's own default range (a billion ids from 1000000) where its range is
# missing or too small. Succeeds only when a file changed: LXD reads the ranges when
# it starts, so only then must a running daemon be restarted.
ensure_subids() {
    local f changed=1
    for f in "$SUBUID_FILE" "$SUBGID_FILE"; do
        root_subids_ok "$f" && continue
        touch "$f"
        sed -i '/^root:/d' "$f"
        echo "root:1000000:1000000000" >>"$f"
        log "root's subordinate ids in $f: 1000000000 from 1000000"
        changed=0
    done
    return $changed
}

# Stops our daemon (its instances stop with it), waiting for the process to end.
stop_daemon() {
    local pid deadline
    pid=$(daemon_pid) || return 0
    LXD_DIR=$TESTBED_LXD_DIR timeout 120 lxd shutdown || log "lxd shutdown failed"
    deadline=$((SECONDS + 30))
    while [ -d "/proc/$pid" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if [ -d "/proc/$pid" ]; then
        log "daemon $pid still alive, sending TERM"
        kill "$pid" || true
    fi
    rm -f "$PID_FILE"
}

network_yaml() {
    cat <<YAML
networks:
- name: $BRIDGE
  type: bridge
  config:
    ipv4.address: $BRIDGE_ADDR
    ipv4.nat: "false"
    ipv6.address: none
YAML
}

pool_yaml() {
    cat <<YAML
storage_pools:
- name: $POOL
  driver: dir
  config:
    source: $POOL_DIR
YAML
}

profile_yaml() {
    cat <<YAML
profiles:
- name: default
  devices:
    eth0:
      name: eth0
      network: $BRIDGE
      type: nic
    root:
      path: /
      pool: $POOL
      type: disk
YAML
}

# Applies only the parts that are missing or differ: re-applying an unchanged default
# profile would make LXD touch every instance using it, and fail on busy ones.
preseed() {
    local doc="" net devices
    net=$(lxdc query "/1.0/networks/$BRIDGE" 2>/dev/null \
        | jq -r '[.config["ipv4.address"], .config["ipv4.nat"], .config["ipv6.address"]] | join(" ")' \
        || true)
    [ "$net" = "$BRIDGE_ADDR false none" ] || doc+=$(network_yaml)$'\n'
    lxdc query "/1.0/storage-pools/$POOL" >/dev/null 2>&1 || doc+=$(pool_yaml)$'\n'
    devices=$(lxdc query /1.0/profiles/default 2>/dev/null | jq -cS '.devices' || true)
    [ "$devices" = "$(jq -cnS --arg br "$BRIDGE" --arg pool "$POOL" \
        '{eth0: {name: "eth0", network: $br, type: "nic"}, root: {path: "/", pool: $pool, type: "disk"}}')" ] \
        || doc+=$(profile_yaml)$'\n'
    if [ -z "$doc" ]; then
        log "bridge $BRIDGE, pool $POOL and default profile already in place"
        return 0
    fi
    LXD_DIR=$TESTBED_LXD_DIR lxd init --preseed <<<"$doc"
}

# The runner image: its recipe, build, cache and import (needs log, die, now, timing,
# lxdc, IMAGE_DIR and IMAGE_ALIAS from above).
# shellcheck source=scripts/testbed-image.sh
. "$(dirname "${BASH_SOURCE[0]}")/testbed-image.sh"

enable_forwarding() {
    mkdir -p "$RUN_DIR"
    # Record only the value from before our first `up`, so `down` restores that one.
    [ -f "$FORWARD_FILE" ] || cat /proc/sys/net/ipv4/ip_forward >"$FORWARD_FILE"
    sysctl -q -w net.ipv4.ip_forward=1
}

cmd_up() {
    [ "$(id -u)" = 0 ] || die "must run as root"
    local t0 t
    t0=$(now)
    t=$(now); install_packages; timing "$t" packages
    ip route replace unreachable "$GUARD_ROUTE"
    enable_forwarding
    # The charm's own firewall table, left on the test bridge by a run that died before
    # its cleanup, would refuse other tests' connections to the host.
    nft delete table inet github-runner 2>/dev/null || true
    # Other users of the daemon lose their instances to this restart: run `up` where
    # nothing else uses the daemon (it happens only when the ranges change).
    if ensure_subids && daemon_pid >/dev/null; then
        log "restarting the daemon: it reads root's subordinate ids when it starts"
        stop_daemon
    fi
    t=$(now); ensure_pool_mount; start_daemon; timing "$t" daemon
    t=$(now); preseed; timing "$t" preseed
    build_image
    t=$(now); import_image; timing "$t" image-import
    timing "$t0" up-total
    log "ready: $(cmd_env | tr '\n' ' ')"
}

# LXD leaves its `inet lxd` table behind. Another LXD daemon on this host shares that
# table, so while one runs only our bridge's chains go.
remove_nft_leftovers() {
    local chain
    if ! pgrep -x lxd >/dev/null; then
        nft delete table inet lxd 2>/dev/null || true
        return 0
    fi
    for chain in $(nft -j list table inet lxd 2>/dev/null \
        | jq -r --arg br "$BRIDGE" '.nftables[].chain? | select(. != null) | .name | select(endswith("." + $br))'); do
        nft delete chain inet lxd "$chain" || true
    done
}

cmd_down() {
    [ "$(id -u)" = 0 ] || die "must run as root"
    local t0 pid dns
    t0=$(now)
    if daemon_pid >/dev/null; then
        stop_daemon
    else
        log "no daemon of ours running"
    fi
    # Our daemon's dnsmasq for the bridge, if the shutdown left it behind.
    dns=$TESTBED_LXD_DIR/networks/$BRIDGE/dnsmasq.pid
    if [ -f "$dns" ] && pid=$(cat "$dns") && [ -d "/proc/$pid" ] \
        && grep -q dnsmasq "/proc/$pid/comm"; then
        kill "$pid" || true
    fi
    remove_nft_leftovers
    ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
    if [ -f "$FORWARD_FILE" ]; then
        sysctl -q -w net.ipv4.ip_forward="$(cat "$FORWARD_FILE")"
        rm -f "$FORWARD_FILE"
    fi
    if [ "${1:-}" = --purge ]; then
        rm -rf "$TESTBED_LXD_DIR"
        mountpoint -q "$POOL_DIR" && umount "$POOL_DIR"
        log "purged daemon state and pool"
    fi
    timing "$t0" down-total
}

cmd_pid() {
    daemon_pid || die "no daemon of ours running (pid file $PID_FILE)"
}

# Only the daemon: the rest of `up` (packages, preseed, image) is left as it was by the
# daemon a fault test stopped, and the daemon finds it all again in its state.
cmd_start() {
    [ "$(id -u)" = 0 ] || die "must run as root"
    local t
    t=$(now); ensure_pool_mount; start_daemon; timing "$t" daemon
}

cmd_env() {
    echo "export LXD_DIR=$TESTBED_LXD_DIR"
    echo "export GHR_TEST_IMAGE=$IMAGE_ALIAS"
    echo "export GHR_TEST_POOL=$POOL"
    echo "export GHR_TEST_BRIDGE=$BRIDGE"
}

case "${1:-}" in
up) cmd_up ;;
down) shift; cmd_down "${1:-}" ;;
env) cmd_env ;;
pid) cmd_pid ;;
start) cmd_start ;;
*) echo "usage: $0 up|down [--purge]|env|pid|start" >&2; exit 2 ;;
esac
