#!/usr/bin/python3
"""Writes and reads the METALD-CFG configuration record (docs/IMAGES.md,
"The configuration partition") in a raw disk image or a block device.

  metald-cfg.py write DISK --offset O --length L --hostname H [--json JSON]
  metald-cfg.py read  DISK --offset O          (prints the JSON; exit 1 if none)

`write` zeroes the first RECORD_MAX bytes of the range, then writes the
record there, then syncs. `read` checks magic, length and digest, as an
image does at boot.
"""
import argparse
import hashlib
import json
import os
import re
import struct
import sys

MAGIC = b"METALD-CFG/1\n\0\0\0"         # 16 bytes
HEADER = struct.Struct("<16sII32s8s")   # magic, json length, reserved, sha256, reserved
BLOCK = 4096
RECORD_MAX = 65536                      # header + JSON, padded to BLOCK
JSON_MAX = RECORD_MAX - HEADER.size
RANGE_MIN = 1 << 20
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
                         r"(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def record(doc):
    body = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    if len(body) > JSON_MAX:
        raise ValueError(f"configuration is {len(body)} bytes, at most {JSON_MAX}")
    head = HEADER.pack(MAGIC, len(body), 0, hashlib.sha256(body).digest(), bytes(8))
    rec = head + body
    return rec + bytes(-len(rec) % BLOCK)


def parse(buf):
    """The JSON object of a valid record at the start of buf, or None."""
    if len(buf) < HEADER.size:
        return None
    magic, length, _, digest, _ = HEADER.unpack_from(buf)
    if magic != MAGIC or length > JSON_MAX or HEADER.size + length > len(buf):
        return None
    body = buf[HEADER.size:HEADER.size + length]
    if hashlib.sha256(body).digest() != digest:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def cmd_write(a):
    if a.offset % BLOCK or a.offset < RANGE_MIN or a.length < RANGE_MIN:
        sys.exit("metald-cfg: the range must start at or after 1 MiB, on 4096 bytes, and hold 1 MiB")
    doc = json.loads(a.json) if a.json else {}
    if not isinstance(doc, dict):
        sys.exit("metald-cfg: --json must be an object")
    if not HOSTNAME_RE.match(a.hostname):
        sys.exit(f"metald-cfg: not a hostname: {a.hostname!r}")
    doc["hostname"] = a.hostname
    rec = record(doc)
    fd = os.open(a.disk, os.O_WRONLY)
    try:
        if os.lseek(fd, 0, os.SEEK_END) < a.offset + a.length:
            sys.exit("metald-cfg: the range ends past the end of the disk")
        os.pwrite(fd, bytes(RECORD_MAX), a.offset)
        os.pwrite(fd, rec, a.offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def cmd_read(a):
    with open(a.disk, "rb") as f:
        f.seek(a.offset)
        doc = parse(f.read(RECORD_MAX))
    if doc is None:
        sys.exit(1)
    print(json.dumps(doc, sort_keys=True))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("disk")
    w.add_argument("--offset", type=int, required=True)
    w.add_argument("--length", type=int, required=True)
    w.add_argument("--hostname", required=True)
    w.add_argument("--json", help="further keys, as a JSON object")
    r = sub.add_parser("read")
    r.add_argument("disk")
    r.add_argument("--offset", type=int, required=True)
    a = p.parse_args()
    try:
        cmd_write(a) if a.cmd == "write" else cmd_read(a)
    except (OSError, ValueError) as e:
        sys.exit(f"metald-cfg: {e}")


if __name__ == "__main__":
    main()
