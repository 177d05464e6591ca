#!/usr/bin/env python3
"""DHCP answer latency, as a client sees it.

  dhcp_latency.py IFACE SERVER COUNT BASE_MAC

Runs COUNT sequential DISCOVER -> OFFER, REQUEST -> ACK exchanges, one
distinct client MAC each (BASE_MAC + i), broadcast like a booting machine,
and prints JSON: latency percentiles in milliseconds for OFFERs and ACKs,
and how many answers never came (1 s timeout each).
"""
import json
import socket
import struct
import sys
import time

COOKIE = b"\x63\x82\x53\x63"


def message(mac, xid, mtype, extra=b""):
    chaddr = mac + b"\0" * 10
    head = struct.pack("!BBBBIHH", 1, 1, 6, 0, xid, 0, 0x8000) + b"\0" * 16 + chaddr + b"\0" * 192 + COOKIE
    return head + bytes([53, 1, mtype]) + bytes([55, 3, 1, 3, 51]) + extra + b"\xff"


def options(b):
    opts, i = {}, 240
    while i + 1 < len(b) and b[i] != 255:
        if b[i] == 0:
            i += 1
            continue
        opts[b[i]] = b[i + 2:i + 2 + b[i + 1]]
        i += 2 + b[i + 1]
    return opts


def exchange(s, server, pkt, xid, want):
    """Sends pkt and waits for a reply of type want; returns (seconds, reply) or (None, None)."""
    t0 = time.perf_counter()
    s.sendto(pkt, ("255.255.255.255", 67))
    deadline = t0 + 1.0
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            return None, None
        s.settimeout(left)
        try:
            data, _ = s.recvfrom(2048)
        except socket.timeout:
            return None, None
        if len(data) < 240 or data[236:240] != COOKIE or struct.unpack("!I", data[4:8])[0] != xid:
            continue
        if options(data).get(53) == bytes([want]):
            return time.perf_counter() - t0, data


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(len(v) * p / 100))] * 1000, 3)


def main():
    iface, server, count, base = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    base_mac = int(base.replace(":", ""), 16)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    s.bind(("0.0.0.0", 68))
    offers, acks, lost = [], [], 0
    for i in range(count):
        mac = (base_mac + i).to_bytes(6, "big")
        xid = (0x5a000000 + i) & 0xFFFFFFFF
        t, reply = exchange(s, server, message(mac, xid, 1), xid, 2)
        if t is None:
            lost += 1
            continue
        offers.append(t)
        yiaddr, sid = reply[16:20], options(reply).get(54, b"")
        req = bytes([50, 4]) + yiaddr + (bytes([54, 4]) + sid if len(sid) == 4 else b"")
        t, _ = exchange(s, server, message(mac, xid, 3, req), xid, 5)
        if t is None:
            lost += 1
            continue
        acks.append(t)
    both = offers + acks
    print(json.dumps({
        "exchanges": count, "lost": lost,
        "offer_p50_ms": percentile(offers, 50), "offer_p99_ms": percentile(offers, 99),
        "ack_p50_ms": percentile(acks, 50), "ack_p99_ms": percentile(acks, 99),
        "p50_ms": percentile(both, 50), "p99_ms": percentile(both, 99), "max_ms": percentile(both, 100),
    }))


if __name__ == "__main__":
    main()
