#!/bin/bash
# `make bench-net`: the DHCP and the TFTP benchmarks, one after the other.
# Each starts its peers itself, in namespaces of its own; none asserts timings.
set -uo pipefail
cd "$(dirname "$0")"
rc=0
echo "== DHCP: perfdhcp against metald, kea-dhcp4-server and dnsmasq"
bash ./bench-dhcp.sh || rc=1
echo
echo "== TFTP: atftp against metald, tftpd-hpa and dnsmasq"
bash ./bench-tftp.sh || rc=1
exit $rc
