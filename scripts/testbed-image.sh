# Sourced by scripts/testbed.sh: the Debian runner image for the test daemon, built
# with debootstrap, cached under $IMAGE_DIR by the hash of its recipe and imported
# under $IMAGE_ALIAS. Uses the helpers testbed.sh defines before sourcing it.
# shellcheck shell=bash

# The image recipe. Its hash is the cache stamp: change anything here (or in
# configure_rootfs) and the next `up` rebuilds the image.
IMAGE_RECIPE_VERSION=1
IMAGE_SUITE=bookworm
IMAGE_INCLUDE=systemd-sysv,iproute2,ifupdown,isc-dhcp-client,curl,jq,procps,ca-certificates,sudo,nftables,netcat-openbsd,bash

mirror_uri() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '/^URIs:/ {print $2; exit}' "$f"
        return 0
    done
    echo http://deb.debian.org/debian
}

# Runs inside the image build, on the debootstrapped tree $1.
configure_rootfs() {
    local root=$1
    chroot "$root" useradd --uid 1000 --create-home --shell /bin/bash --user-group ubuntu
    echo 'ubuntu ALL=(ALL) NOPASSWD:ALL' >"$root/etc/sudoers.d/90-ubuntu"
    chmod 0440 "$root/etc/sudoers.d/90-ubuntu"
    mkdir -p "$root/etc/network/interfaces.d"
    printf 'auto eth0\niface eth0 inet dhcp\n' >"$root/etc/network/interfaces.d/eth0"
    printf 'source /etc/network/interfaces.d/*\nauto lo\niface lo inet loopback\n' \
        >"$root/etc/network/interfaces"
    # /etc/hostname and /etc/hosts come from the image templates (the instance name).
    rm -f "$root/etc/hostname"
    : >"$root/etc/machine-id"
    rm -f "$root/var/lib/dbus/machine-id"
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
}

# LXD renders the templates on instance creation, so sudo and friends resolve the
# instance's own hostname.
write_metadata() {
    local dir=$1 stamp=$2
    mkdir -p "$dir/templates"
    cat >"$dir/metadata.yaml" <<META
architecture: $(uname -m)
creation_date: $(date +%s)
properties:
  os: debian
  release: $IMAGE_SUITE
  description: github-runner test image (recipe ${stamp:0:12})
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
  /etc/hosts:
    when: [create, copy]
    template: hosts.tpl
META
    echo '{{ instance.name }}' >"$dir/templates/hostname.tpl"
    printf '127.0.0.1 localhost\n127.0.1.1 {{ instance.name }}\n' >"$dir/templates/hosts.tpl"
}

# The debootstrap result alone, cached apart from the configuration so that a change
# to configure_rootfs costs seconds, not a new download.
base_stamp() {
    echo "$IMAGE_SUITE $IMAGE_INCLUDE $(mirror_uri)" | sha256sum | cut -d' ' -f1
}

recipe_stamp() {
    {
        echo "$IMAGE_RECIPE_VERSION $(base_stamp)"
        declare -f configure_rootfs write_metadata
    } | sha256sum | cut -d' ' -f1
}

build_base() {
    local build=$1 t
    if [ -f "$IMAGE_DIR/base.stamp" ] && [ "$(cat "$IMAGE_DIR/base.stamp")" = "$(base_stamp)" ] \
        && [ -f "$IMAGE_DIR/base.tar" ]; then
        mkdir -p "$build/rootfs"
        tar -C "$build/rootfs" --numeric-owner -xf "$IMAGE_DIR/base.tar"
        return 0
    fi
    t=$(now)
    log "debootstrap $IMAGE_SUITE from $(mirror_uri) (one to three minutes)"
    debootstrap --variant=minbase --include="$IMAGE_INCLUDE" "$IMAGE_SUITE" \
        "$build/rootfs" "$(mirror_uri)" >"$build/debootstrap.log" 2>&1 \
        || { tail -20 "$build/debootstrap.log" >&2; die "debootstrap failed"; }
    chroot "$build/rootfs" apt-get clean
    tar -C "$build/rootfs" --numeric-owner -cf "$build/base.tar" .
    mv -f "$build/base.tar" "$IMAGE_DIR/base.tar"
    base_stamp >"$IMAGE_DIR/base.stamp"
    timing "$t" debootstrap
}

build_image() {
    local stamp build t
    stamp=$(recipe_stamp)
    if [ -f "$IMAGE_DIR/stamp" ] && [ "$(cat "$IMAGE_DIR/stamp")" = "$stamp" ] \
        && [ -f "$IMAGE_DIR/rootfs.tar" ] && [ -f "$IMAGE_DIR/metadata.tar.gz" ]; then
        log "image cache up to date ($IMAGE_DIR)"
        return 0
    fi
    t=$(now)
    mkdir -p "$IMAGE_DIR"
    rm -rf "$IMAGE_DIR"/build.*
    build=$(mktemp -d "$IMAGE_DIR/build.XXXXXX")
    # A failed build leaves nothing half-written behind.
    trap 'rm -rf "$build"' EXIT
    build_base "$build"
    configure_rootfs "$build/rootfs"
    write_metadata "$build/meta" "$stamp"
    tar -C "$build/meta" -czf "$build/metadata.tar.gz" .
    tar -C "$build/rootfs" --numeric-owner -cf "$build/rootfs.tar" .
    cat "$build/metadata.tar.gz" "$build/rootfs.tar" | sha256sum | cut -d' ' -f1 \
        >"$build/fingerprint"
    mv -f "$build/metadata.tar.gz" "$build/rootfs.tar" "$build/fingerprint" "$IMAGE_DIR/"
    echo "$stamp" >"$IMAGE_DIR/stamp"
    rm -rf "$build"
    trap - EXIT
    timing "$t" image-build
}

import_image() {
    local want have old
    want=$(cat "$IMAGE_DIR/fingerprint")
    have=$(lxdc query "/1.0/images/aliases/$IMAGE_ALIAS" 2>/dev/null | jq -r .target || true)
    if [ "$have" = "$want" ]; then
        log "image $IMAGE_ALIAS up to date (${want:0:12})"
        return 0
    fi
    if ! lxdc query "/1.0/images/$want" >/dev/null 2>&1; then
        lxdc image import "$IMAGE_DIR/metadata.tar.gz" "$IMAGE_DIR/rootfs.tar" >/dev/null
    fi
    if [ -n "$have" ]; then
        old=$have
        lxdc image alias delete "$IMAGE_ALIAS"
        # The old image is only removed once no alias points at it any more.
        lxdc image delete "$old" 2>/dev/null || true
    fi
    lxdc image alias create "$IMAGE_ALIAS" "$want"
    log "imported $IMAGE_ALIAS (${want:0:12})"
}
