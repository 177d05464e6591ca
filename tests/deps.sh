#!/bin/bash
# Installs the Debian 12 packages that building metald and running every test
# tier need. Used by `make deps` and by CI; safe to run again.
set -euo pipefail

BUILD=(build-essential pkg-config clang llvm libclang-rt-14-dev
       libmicrohttpd-dev libcurl4-openssl-dev libjson-c-dev libarchive-dev libssl-dev
       libsystemd-dev libsqlite3-dev libyaml-dev libzstd-dev)
TEST=(iproute2 procps python3 jq xxd sqlite3 curl cpio
      isc-dhcp-client isc-dhcp-relay busybox-static kea-admin dnsmasq-base
      tftp-hpa atftp tshark
      qemu-system-x86 ipxe-qemu ipxe ovmf
      zstd syslinux syslinux-common mtools dosfstools fdisk gdisk systemd-boot-efi squashfs-tools erofs-utils
      openipmi ipmitool openssl)
# Peers for `make bench` only (the benchmarks start them by hand in namespaces).
BENCH=(kea-dhcp4-server tftpd-hpa nginx-light wrk bc)

want=("${BUILD[@]}" "${TEST[@]}")
[ "${1:-}" = --bench ] && want+=("${BENCH[@]}")

missing=()
for p in "${want[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
        echo "deps: all ${#want[@]} packages present"
        exit 0
fi
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; the default (no) is fine
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
