#!/bin/bash
# Signed images through the real binary: keygen, sign --build, verify, import
# from a directory and from a tar.zst made by GNU tar, list/show/rm, a rollback
# refused with exit 1 and its one-line reason, and OpenSSL interoperability
# both ways (a signature by `openssl pkeyutl -sign -rawin` verifies in metald;
# metald's verifies with `openssl pkeyutl -verify -rawin`).
. "$(dirname "$0")/lib.sh"
need openssl tar zstd truncate

cd "$T"
expect_rc() {   # expect_rc RC CMD...: runs CMD, output in $T/out and $T/err
        local want=$1 rc=0
        shift
        "$@" >"$T/out" 2>"$T/err" || rc=$?
        [ "$rc" = "$want" ] || fail "$* exited $rc, expected $want: $(cat "$T/err")"
}

make_src() {    # make_src DIR: a kernel, an initrd and a sparse 64 MiB disk with three data ranges
        mkdir -p "$1"
        head -c 300000 /dev/urandom >"$1/kernel"
        echo "initrd of $1" >"$1/initrd"
        truncate -s 64M "$1/disk"
        dd if=/dev/urandom of="$1/disk" bs=4096 count=4 seek=256 conv=notrunc status=none
        dd if=/dev/urandom of="$1/disk" bs=4096 count=2 seek=5000 conv=notrunc status=none
        dd if=/dev/urandom of="$1/disk" bs=4096 count=1 seek=16383 conv=notrunc status=none
}

expect_rc 0 "$METALD" image keygen --out site
grep -q '^key_id: [0-9a-f]\{16\}$' out || fail "keygen printed: $(cat out)"
KEY_ID=$(sed -n 's/^key_id: //p' out)
[ "$(stat -c %a site.key)" = 600 ] || fail "site.key has mode $(stat -c %a site.key)"
[ "$(stat -c %a site.pub)" = 644 ] || fail "site.pub has mode $(stat -c %a site.pub)"
[ "$(openssl pkey -pubin -in site.pub -outform DER | tail -c 32 | sha256sum | cut -c1-16)" = "$KEY_ID" ] ||
        fail "the key id is not the documented digest of the public key"
expect_rc 1 "$METALD" image keygen --out site
grep -q 'site.key: File exists' err || fail "keygen over an existing key: $(cat err)"

make_src src2
expect_rc 0 "$METALD" image sign src2 --key site.key --build --name debian-worker --version 2 \
        --chunk-size 64K --expires 30d --cmdline "console=ttyS0 quiet" --out img2
expect_rc 0 "$METALD" image verify img2 --trusted-key site.pub
grep -q "^ok debian-worker:2 key $KEY_ID" out || fail "verify printed: $(cat out)"
[ "$(stat -c %s src2/disk)" = $((64 * 1024 * 1024)) ] || fail "--out rewrote the source disk"

# OpenSSL interop, both ways
openssl pkeyutl -verify -rawin -pubin -inkey site.pub -in img2/manifest.json -sigfile img2/manifest.json.sig \
        >/dev/null || fail "openssl does not verify metald's signature"
openssl pkeyutl -sign -rawin -inkey site.key -in img2/manifest.json -out img2/manifest.json.sig
expect_rc 0 "$METALD" image verify img2 --trusted-key site.pub
openssl genpkey -algorithm ed25519 -out other.key 2>/dev/null
openssl pkey -in other.key -pubout -out other.pub
expect_rc 1 "$METALD" image verify img2 --trusted-key other.pub
grep -q "image img2: key $KEY_ID: not a trusted key" err || fail "unknown key: $(cat err)"
expect_rc 1 "$METALD" image verify img2 --trusted-key site.pub --revoked-key site.pub
grep -q "key $KEY_ID: the key is revoked" err || fail "revoked key: $(cat err)"

cat >metald.yaml <<CFG
state_dir: $T/state
images: { trusted_keys: [$T/site.pub], max_concurrent_installs: 2 }
profiles:
  - { name: workers, image: debian-worker }
  - { name: pinned, match: { mac: "52:54:00:*" }, image: debian-worker, image_version: 1 }
CFG
expect_rc 0 "$METALD" image import img2 --config metald.yaml
grep -q "^imported debian-worker:2 key $KEY_ID" out || fail "import printed: $(cat out)"

# a tar.zst of another version, as GNU tar writes it (one top-level directory)
make_src src3
expect_rc 0 "$METALD" image sign src3 --key site.key --build --name debian-worker --version 3 --compress none
tar --zstd -cf img3.tar.zst --transform 's,^src3,debian-worker-3,' src3
expect_rc 0 "$METALD" image verify img3.tar.zst --config metald.yaml
expect_rc 0 "$METALD" image import img3.tar.zst --config metald.yaml
grep -q "^imported debian-worker:3" out || fail "import of the tar.zst printed: $(cat out)"

expect_rc 0 "$METALD" image list --config metald.yaml
grep -q "^debian-worker  *2 $KEY_ID .*kernel,initrd,disk .* -$" out || fail "list: $(cat out)"
grep -q "^debian-worker  *3 $KEY_ID .* workers$" out || fail "list: $(cat out)"
expect_rc 0 "$METALD" image list --config metald.yaml --json
grep -q '"version":3,.*"profiles":\["workers"\]' out || fail "list --json: $(cat out)"
expect_rc 0 "$METALD" image show debian-worker:2 --config metald.yaml
grep -q "^cmdline: console=ttyS0 quiet$" out || fail "show: $(cat out)"
grep -q "^disk: .*zstd, raw 67108864 bytes, 3 extents$" out || fail "show: $(cat out)"

# rollback: version 1 after 3 is refused, with one line and exit 1; nothing is left behind
make_src src1
expect_rc 0 "$METALD" image sign src1 --key site.key --build --name debian-worker --version 1
expect_rc 1 "$METALD" image import src1 --config metald.yaml
[ "$(cat err)" = "metald: image: image debian-worker: key $KEY_ID: version 1 is lower than version 3 imported before (rollback refused; --allow-downgrade overrides)" ] ||
        fail "rollback refusal: $(cat err)"
[ -z "$(ls -A state/images | grep -v '^\.lock$' | grep -v '^debian-worker$')" ] || fail "import left: $(ls -A state/images)"
[ ! -e state/images/debian-worker/1 ] || fail "version 1 was imported"

expect_rc 0 "$METALD" image rm debian-worker:3 --config metald.yaml
[ "$(cut -d' ' -f1 state/images/debian-worker/highest)" = 3 ] || fail "rm lowered the rollback mark"
expect_rc 1 "$METALD" image import src1 --config metald.yaml
expect_rc 0 "$METALD" image import src1 --config metald.yaml --allow-downgrade
expect_rc 1 "$METALD" image show debian-worker:3 --config metald.yaml
expect_rc 2 "$METALD" image rm debian-worker --config metald.yaml

# a tampered kernel is refused and named
printf 'X' | dd of=img2/kernel bs=1 seek=1000 conv=notrunc status=none
expect_rc 1 "$METALD" image verify img2 --trusted-key site.pub
grep -q "key $KEY_ID: kernel: chunk 0 (bytes 0-65535) does not match its digest" err || fail "tamper: $(cat err)"
log "ok"
