#!/usr/bin/env python3
"""Transfers a TFTP client starts and then abandons, around a command (plain sockets).

  tftp_abandon.py SERVER FILE COUNT [--bind ADDR] [--option NAME=VALUE]... [--stall N] [-- CMD...]

Opens COUNT read requests for FILE, each from a port of its own, and reads
the first answer of each (DATA 1, or an OACK) without ever acknowledging it.
With --stall N, waits until every transfer has been sent N more times: the
server has then seen N timeouts in a row with no progress. Then runs CMD,
listens a little longer for ERRORs on the abandoned transfers, ends the ones
still open with an ERROR, and prints a JSON report on stdout:
{"rc": CMD's exit status, "errors": {"INDEX": "message", ...}}.
CMD's output goes to stderr. Every wait is bounded.
"""
import argparse
import json
import select
import socket
import struct
import subprocess
import sys
import time

DATA, ERROR, OACK = 3, 5, 6


def rrq(name, options):
    b = struct.pack("!H", 1) + name.encode() + b"\0octet\0"
    for k, v in options:
        b += k.encode() + b"\0" + v.encode() + b"\0"
    return b


def recv(sock, timeout):
    r, _, _ = select.select([sock], [], [], timeout)
    if not r:
        return None, None
    return sock.recvfrom(65536)


def describe(pkt):
    op = struct.unpack("!H", pkt[:2])[0] if len(pkt) >= 2 else 0
    if op == ERROR and len(pkt) >= 4:
        return op, pkt[4:].split(b"\0", 1)[0].decode(errors="replace")
    return op, None


def start(args):
    """The abandoned transfers: (socket, TID, first answer) each."""
    held = []
    for i in range(args.count):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((args.bind, 0))
        s.sendto(rrq(args.file, args.option), (args.server, 69))
        pkt, src = recv(s, 5)
        if pkt is None:
            sys.exit(f"transfer {i}: no answer")
        op, msg = describe(pkt)
        if op not in (DATA, OACK):
            sys.exit(f"transfer {i}: answered with opcode {op} {msg or ''}")
        held.append((s, src, pkt))
    return held


def wait_stalled(held, n, deadline):
    """Until each transfer's first answer came n more times (retransmissions)."""
    for i, (s, tid, first) in enumerate(held):
        seen = 0
        while seen < n:
            pkt, src = recv(s, max(0.0, deadline - time.monotonic()))
            if pkt is None:
                sys.exit(f"transfer {i}: {seen} of {n} retransmissions before the deadline")
            if src == tid and pkt == first:
                seen += 1


def drain(held, secs, errors):
    end = time.monotonic() + secs
    while time.monotonic() < end:
        for i, (s, tid, _) in enumerate(held):
            while True:
                pkt, src = recv(s, 0)
                if pkt is None:
                    break
                op, msg = describe(pkt)
                if op == ERROR and src == tid:
                    errors[str(i)] = msg
        time.sleep(0.05)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("server")
    p.add_argument("file")
    p.add_argument("count", type=int)
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--option", action="append", default=[], type=lambda s: tuple(s.split("=", 1)))
    p.add_argument("--stall", type=int, default=0)
    p.add_argument("--deadline", type=float, default=30.0, help="seconds for --stall")
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args, cmd = p.parse_args(argv[:cut]), argv[cut + 1:]

    held = start(args)
    if args.stall:
        wait_stalled(held, args.stall, time.monotonic() + args.deadline)
    rc = subprocess.run(cmd, stdout=sys.stderr, timeout=60).returncode if cmd else 0
    errors = {}
    drain(held, 0.5, errors)
    for i, (s, tid, _) in enumerate(held):
        if str(i) not in errors:
            s.sendto(struct.pack("!HH", ERROR, 0) + b"abandoned\0", tid)
        s.close()
    print(json.dumps({"rc": rc, "errors": errors}))


if __name__ == "__main__":
    main()
