#!/bin/bash
# proxyDHCP beside another DHCP server: metald never hands out an address,
# answers only PXE clients on port 67 with boot information, and answers the
# port 4011 boot-server request with an ACK to the client's address and port.
. "$(dirname "$0")/lib.sh"
need python3 jq

SRV=$(ns_add srv)
CLI=$(ns_add cli)
veth "$SRV" vs0 10.77.0.1/24 "$CLI" vc0 10.77.0.50/24

cat >"$T/metald.yaml" <<CFG
server: { interface: vs0, address: 10.77.0.1 }
state_dir: $T/state
control: { socket: $T/control.sock }
log_level: debug
dhcp: { mode: proxy }
tftp: { enabled: false }
http: { enabled: false, port: 8080 }
CFG
metald_start "$SRV"
probe() { in_ns "$CLI" python3 "$TOP/tests/integration/dhcp_probe.py" pxe vc0 10.77.0.1 "$@"; }

R=$(probe --arch 0) || fail "no proxy offer for a BIOS PXE client"
[ "$(jq -r .yiaddr <<<"$R")" = 0.0.0.0 ] || fail "proxy offered an address: $R"
[ "$(jq -r .file <<<"$R")" = undionly.kpxe ] || fail "wrong boot file: $R"
[ "$(jq -r .siaddr <<<"$R")" = 10.77.0.1 ] || fail "wrong next server: $R"
[ "$(jq -r '.options["53"]' <<<"$R")" = 02 ] || fail "not an OFFER: $R"
[ "$(jq -r '.options["60"]' <<<"$R")" = "$(printf PXEClient | xxd -p)" ] || fail "no PXEClient class: $R"
[ "$(jq -r '.options["51"]' <<<"$R")" = null ] || fail "proxy offer carries a lease time: $R"
[ "$(jq -r '.options["97"]' <<<"$R")" = "00$(printf '%02x' $(seq 0 15))" ] || fail "UUID not echoed: $R"

R=$(probe --arch 7 --ipxe) || fail "no proxy offer for iPXE"
[ "$(jq -r .file <<<"$R")" = "http://10.77.0.1:8080/boot.ipxe" ] || fail "iPXE not sent to the script: $R"

R=$(probe --arch 7 --port 4011 --type request --ciaddr 10.77.0.50) || fail "no answer on port 4011"
[ "$(jq -r '.options["53"]' <<<"$R")" = 05 ] || fail "4011 answer is not an ACK: $R"
[ "$(jq -r .file <<<"$R")" = ipxe.efi ] || fail "wrong UEFI boot file: $R"
[ "$(jq -r .from <<<"$R")" = 10.77.0.1:4011 ] || fail "4011 answer came from $(jq -r .from <<<"$R")"
[ "$(jq -r '.options["43"]' <<<"$R")" = 470480000000ff ] || fail "boot item not echoed: $R"

# a plain DHCP client (no PXEClient class) gets no answer from a proxy
! probe --arch 0 --vci MSFT >/dev/null || fail "proxy answered a non-PXE client"
metald_stop
log "ok"
