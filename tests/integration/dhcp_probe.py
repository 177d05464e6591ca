#!/usr/bin/env python3
"""Hand-built DHCP datagrams for integration tests (plain sockets, no scapy).

  dhcp_probe.py pxe IFACE SERVER --arch N [--vci S] [--ipxe] [--port 67|4011] [--type discover|request]
      sends one PXE client message and prints the reply as JSON (exit 1 if none)
  dhcp_probe.py hostile SERVER
      sends malformed datagrams that a server must survive, without waiting
"""
import argparse
import json
import os
import socket
import struct
import sys

COOKIE = b"\x63\x82\x53\x63"


def header(mac, xid, ciaddr="0.0.0.0", flags=0x8000, op=1, hlen=6):
    chaddr = mac + b"\0" * (16 - len(mac))
    return (struct.pack("!BBBBIHH", op, 1, hlen, 0, xid, 0, flags) + socket.inet_aton(ciaddr) +
            b"\0" * 12 + chaddr + b"\0" * 192 + COOKIE)


def opt(code, data):
    return bytes([code, len(data)]) + data


def parse_reply(b):
    if len(b) < 240 or b[236:240] != COOKIE:
        return None
    r = {"op": b[0], "xid": struct.unpack("!I", b[4:8])[0], "yiaddr": socket.inet_ntoa(b[16:20]),
         "siaddr": socket.inet_ntoa(b[20:24]), "file": b[108:236].split(b"\0")[0].decode(errors="replace"),
         "options": {}}
    i = 240
    while i < len(b) and b[i] != 255:
        if b[i] == 0:
            i += 1
            continue
        code, ln = b[i], b[i + 1]
        r["options"][str(code)] = b[i + 2:i + 2 + ln].hex()
        i += 2 + ln
    return r


def cmd_pxe(a):
    mac = bytes.fromhex(a.mac.replace(":", ""))
    xid = int.from_bytes(os.urandom(4), "big")
    mtype = 1 if a.type == "discover" else 3
    p = header(mac, xid, ciaddr=a.ciaddr)
    p += opt(53, bytes([mtype]))
    p += opt(60, (a.vci or "PXEClient:Arch:%05d:UNDI:003000" % a.arch).encode())
    p += opt(93, struct.pack("!H", a.arch))
    p += opt(97, b"\0" + bytes(range(16)))
    p += opt(55, bytes([1, 3, 43, 60, 66, 67, 97, 175]))
    if a.ipxe:
        p += opt(77, b"iPXE")
    if a.port == 4011:
        p += opt(43, bytes([71, 4, 0x80, 0, 0, 0, 255]))
    p += b"\xff"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, a.iface.encode())
    s.bind(("0.0.0.0", 68 if a.port == 67 else 4011))
    s.settimeout(3)
    dst = "255.255.255.255" if a.port == 67 else a.server
    s.sendto(p, (dst, a.port))
    try:
        while True:
            data, src = s.recvfrom(2048)
            r = parse_reply(data)
            if r and r["xid"] == xid:
                r["from"] = "%s:%d" % src
                print(json.dumps(r))
                return 0
    except socket.timeout:
        print(json.dumps({"error": "no reply"}))
        return 1


def hostile_payloads():
    mac = bytes.fromhex("020000000066")
    good = header(mac, 1) + opt(53, b"\x01")
    yield b""                                           # empty
    yield b"\x01"                                       # one byte
    yield good[:100]                                    # truncated header
    yield good[:239]                                    # no cookie
    yield header(mac, 2)[:236] + b"XXXX" + opt(53, b"\x01") + b"\xff"   # wrong cookie
    yield header(mac, 3) + b"\x0c\xff" + b"a" * 10                # option runs past the end
    yield header(mac, 4) + opt(53, b"\x01") + b"\x0c"             # code without length
    yield header(mac, 5) + opt(52, b"\x03") + opt(53, b"\x01") + b"\xff"   # overload, areas empty
    p = bytearray(header(mac, 6) + opt(52, b"\x01") + opt(53, b"\x01") + b"\xff")
    p[108:111] = b"\x34\x01\x03"                        # overload option inside the file area
    yield bytes(p)
    yield header(mac, 7) + opt(52, b"\x09") + b"\xff"   # bogus overload value
    yield header(mac, 8) + b"".join(opt(200, b"") for _ in range(300)) + b"\xff"   # option flood
    yield header(mac, 9, hlen=200) + opt(53, b"\x01") + b"\xff"   # hlen beyond chaddr
    yield header(bytes(6), 10) + opt(53, b"\x01") + b"\xff"       # zero MAC
    yield header(mac, 11, op=2) + opt(53, b"\x02") + b"\xff"      # a reply sent to the server
    yield header(mac, 12) + opt(53, b"\x63") + b"\xff"            # unknown message type
    yield header(mac, 13) + opt(53, b"\x03") + opt(54, b"\x01") + b"\xff"   # short server id
    yield header(mac, 14) + opt(53, b"\x01") + opt(97, b"\x01abc") + opt(93, b"\x00") + b"\xff"
    yield header(mac, 15) + opt(53, b"\x01") + opt(57, b"\x00\x10") + b"\xff"   # tiny max size
    yield header(mac, 16) + opt(53, b"\x01") + opt(61, b"") + b"\xff"           # empty client id
    yield header(mac, 17) + opt(53, b"\x01") + opt(61, b"x" * 255) + b"\xff"    # huge client id
    yield header(mac, 18) + opt(53, b"\x01") + b"\0" * 1200                     # padding, no end
    yield os.urandom(1400)                              # noise
    yield header(mac, 19) + opt(53, b"\x01") + b"\xff" + b"A" * 3000            # oversized datagram


def cmd_hostile(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    n = 0
    for payload in hostile_payloads():
        for port in (67, 4011):
            s.sendto(payload, (a.server, port))
            n += 1
    print("sent %d hostile datagrams" % n)
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pxe")
    p.add_argument("iface")
    p.add_argument("server")
    p.add_argument("--arch", type=int, default=0)
    p.add_argument("--vci")
    p.add_argument("--ipxe", action="store_true")
    p.add_argument("--port", type=int, default=67)
    p.add_argument("--type", default="discover")
    p.add_argument("--ciaddr", default="0.0.0.0")
    p.add_argument("--mac", default="02:00:00:00:00:99")
    h = sub.add_parser("hostile")
    h.add_argument("server")
    a = ap.parse_args()
    return cmd_pxe(a) if a.cmd == "pxe" else cmd_hostile(a)


if __name__ == "__main__":
    sys.exit(main())
