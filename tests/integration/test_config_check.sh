#!/bin/bash
# The files a configuration needs, checked by the real `metald config check`
# and `metald serve`: an ARM64 iPXE binary that is missing is one warning and
# metald starts; a missing enrollment kernel, a missing x64 UEFI binary, an
# ARM64 binary built for x64 and a missing busybox for boot.enroll.build are
# errors with one line each and exit status 2, and serve does not start.
. "$(dirname "$0")/lib.sh"
need python3 timeout

SRV=$(ns_add srv)
CLI=$(ns_add cli)
veth "$SRV" vs0 10.66.0.1/24 "$CLI" vc0 10.66.0.2/24
ROOT=$T/root
CFG=$T/metald.yaml
mkdir -p "$ROOT"
cp "$TOP/pxe/enroll.ipxe.tmpl" "$ROOT/"
if [ -f "$TOP/pxe/undionly.kpxe" ]; then cp "$TOP/pxe/undionly.kpxe" "$ROOT/"; else head -c 70000 /dev/zero >"$ROOT/undionly.kpxe"; fi
if [ -f "$TOP/pxe/ipxe.efi" ]; then cp "$TOP/pxe/ipxe.efi" "$ROOT/"; else fake_efi "$ROOT/ipxe.efi" 0x8664; fi
fake_efi "$ROOT/ipxe-i386.efi" 0x014c
fake_efi "$ROOT/ipxe-arm32.efi" 0x01c2
fake_kernel "$ROOT/vmlinuz"
echo initrd >"$T/initrd"
cp "$T/initrd" "$ROOT/initrd.img"

write_config() {
        cat >"$CFG" <<CFG
server: { interface: vs0, address: 10.66.0.1 }
state_dir: $T/state
control: { socket: $T/control.sock }
dhcp: { mode: proxy }
tftp: { root: $ROOT }
http: { root: $ROOT, port: 8080 }
boot:
  enroll: { kernel: vmlinuz, $1, cmdline: "console=ttyS0" }
CFG
}

ARM64="$ROOT/ipxe-arm64.efi"
ARM64_WARNING="warning: $ARM64: missing from tftp.root and http.root; ARM64 UEFI (arch 11), ARM64 UEFI HTTP (arch 19) cannot boot"

# check EXPECTED_STATUS EXPECTED_STDOUT EXPECTED_STDERR_LINE...: runs `metald config check`
# and compares its status, standard output and standard error exactly.
check() {
        local want_rc=$1 want_out=$2 rc=0
        shift 2
        "$METALD" config check --config "$CFG" >"$T/check.out" 2>"$T/check.err" || rc=$?
        [ "$rc" = "$want_rc" ] || fail "config check exited $rc, expected $want_rc: $(cat "$T/check.err")"
        [ "$(cat "$T/check.out")" = "$want_out" ] || fail "config check printed '$(cat "$T/check.out")', expected '$want_out'"
        printf '%s\n' "${@/#/metald: }" >"$T/check.want"
        [ $# -gt 0 ] || : >"$T/check.want"
        diff -u "$T/check.want" "$T/check.err" >&2 || fail "config check: other lines on standard error"
}

# serve_refuses LINE...: `metald serve` exits 2 before it binds anything, logging exactly these lines.
serve_refuses() {
        local rc=0
        in_ns "$SRV" timeout 20 "$METALD" serve --config "$CFG" >"$T/serve.log" 2>&1 || rc=$?
        [ "$rc" = 2 ] || fail "serve exited $rc, expected 2: $(cat "$T/serve.log")"
        sed 's/^[^ ]* metald\[[0-9]*\]: //' "$T/serve.log" >"$T/serve.lines"
        printf '%s\n' "$@" >"$T/serve.want"
        diff -u "$T/serve.want" "$T/serve.lines" >&2 || fail "serve logged other lines"
        ! in_ns "$SRV" ss -Hlntu | grep -q . || fail "serve left a socket bound"
}

log "a missing ARM64 binary is a warning: config check is ok, serve starts"
write_config "initrd: initrd.img"
check 0 "$CFG: ok (1 warning)" "$ARM64_WARNING"
metald_start "$SRV"
grep -qxF "$ARM64_WARNING" <(sed 's/^[^ ]* metald\[[0-9]*\]: //' "$T/metald.log") || fail "serve did not log the warning"
metald_stop

log "every file there: ok without warnings"
fake_efi "$ARM64" 0xaa64
check 0 "$CFG: ok"

log "an ARM64 binary built for x64 is an error"
fake_efi "$ARM64" 0x8664
check 2 "" "error: $ARM64: is an EFI binary for x64 (0x8664), not for ARM64 (0xaa64); ARM64 UEFI (arch 11), ARM64 UEFI HTTP (arch 19) cannot boot"
rm "$ARM64"

log "a missing enrollment kernel is an error: exit 2, serve does not start"
mv "$ROOT/vmlinuz" "$T/vmlinuz"
KERNEL_ERROR="error: $ROOT/vmlinuz: missing from http.root; no machine can enroll"
check 2 "" "$ARM64_WARNING" "$KERNEL_ERROR"
serve_refuses "$ARM64_WARNING" "$KERNEL_ERROR" "error: $CFG: 1 of the files it needs is missing or unusable; not starting"
mv "$T/vmlinuz" "$ROOT/vmlinuz"

log "a missing x64 UEFI binary names every architecture it breaks"
mv "$ROOT/ipxe.efi" "$T/ipxe.efi"
EFI_ERROR="error: $ROOT/ipxe.efi: missing from tftp.root and http.root; x64 UEFI (arch 7, 9), x64 UEFI HTTP (arch 16) cannot boot"
check 2 "" "$EFI_ERROR" "$ARM64_WARNING"
serve_refuses "$EFI_ERROR" "$ARM64_WARNING" "error: $CFG: 1 of the files it needs is missing or unusable; not starting"
mv "$T/ipxe.efi" "$ROOT/ipxe.efi"

log "boot.enroll.build: config check reads the builder's inputs"
write_config "build: { modules: /lib/modules/0.0.0-none, busybox: $T/no-busybox }"
check 2 "" "$ARM64_WARNING" \
        "error: boot.enroll.build: cannot read busybox $T/no-busybox: No such file or directory; no machine can enroll"

log "a configuration error still exits 2 with its one line"
printf 'tftp: { root: %s, bogus: 1 }\n' "$ROOT" >"$CFG"
check 2 "" "$CFG:1: tftp.bogus: unknown key"
log "ok"
