#!/usr/bin/env bash
# Debian packages the tests use on this machine, beyond the LXD testbed's own
# (scripts/testbed.sh): curl and jq for the simulator's runner app, tinyproxy and
# openssl for the aproxy test, iproute2 and nftables for namespaces and firewalls,
# unzip and binutils (objdump) for the packed-charm check, GNU time for `make bench`,
# systemd-analyze, strace and setpriv/prlimit (util-linux) for the policy service's sandbox tests.
# Idempotent: installs only what is missing.
set -euo pipefail
declare -A package_of=(
    [curl]=curl [jq]=jq [tinyproxy]=tinyproxy [openssl]=openssl [ip]=iproute2
    [nft]=nftables [unzip]=unzip [objdump]=binutils [time]=time
    [systemd-analyze]=systemd [strace]=strace [setpriv]=util-linux [prlimit]=util-linux
)
missing=()
for tool in "${!package_of[@]}"; do
    # Paths, not `command -v`: `time` is also a shell keyword.
    [ -x "/usr/bin/$tool" ] || [ -x "/usr/sbin/$tool" ] || [ -x "/bin/$tool" ] || [ -x "/sbin/$tool" ] \
        || missing+=("${package_of[$tool]}")
done
if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# tinyproxy's package starts a system instance where systemd runs; the tests start their
# own, by PID, and need nothing from it.
echo "test tools present"
