#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A stand-in for metald's agent API (docs/AGENT-API.md), for testing metald-agent.

It checks every request against the contract strictly (a violation is
answered with 400 and recorded), answers according to a scenario, and
appends one JSON line per request to the log file:
  {"t": seconds since start, "method", "path", "status", "body", "violation"}

usage: agent_mock.py --port P --log FILE --nonce N --mac M --scenario S [--image-dir DIR ...]
  normal     register, then heartbeats: "waiting for approval" twice, then "approved"
  retry503   the first two registrations get 503 with Retry-After: 2
  hb401      the third heartbeat gets 401 (the session ended)
  reboot     the second heartbeat says reboot; the log event is answered
  poweroff   the registration says poweroff
  install    the first heartbeat says install the image of --image-dir; install-succeeded turns it
             into reboot, install-failed into wait
  event409   like install, but the event is refused with 409; GET instruction says wait

With --image-dir, the signed image there (manifest.json, manifest.json.sig, disk) is
served as metald serves it: the manifest and its signature to the session at
/v1/agent/image/manifest(.sig), the disk artifact at /_metald/images/NAME/VERSION/disk
with single byte ranges (206 and Content-Range), each reply held back --chunk-delay s.
"""
import argparse
import hashlib
import json
import os
import re
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEARTBEAT_S = 1
MACHINE = "m-525400123456"
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
EVENTS = {"install-started", "install-progress", "install-succeeded", "install-failed", "log"}
MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
UUID_RE = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$")


class Violation(Exception):
    pass


def require(cond, what):
    if not cond:
        raise Violation(what)


def check_string(v, what, limit=255):
    require(isinstance(v, str), f"{what} is not a string")
    require(len(v.encode()) <= limit, f"{what} is longer than {limit} bytes")
    require(all(ord(c) >= 0x20 and ord(c) != 0x7F and not 0x80 <= ord(c) < 0xA0 for c in v),
            f"{what} is not printable")


def check_int(v, what, lo=0, hi=2**63):
    require(isinstance(v, int) and not isinstance(v, bool), f"{what} is not an integer")
    require(lo <= v <= hi, f"{what} is out of range")


def check_keys(obj, keys, what, optional=()):
    require(isinstance(obj, dict), f"{what} is not an object")
    extra = set(obj) - set(keys) - set(optional)
    missing = set(keys) - set(obj)
    require(not extra, f"{what} has unknown fields {sorted(extra)}")
    require(not missing, f"{what} lacks {sorted(missing)}")


def check_inventory(inv):
    check_keys(inv, ["system", "cpu", "memory_bytes", "nics", "disks"], "inventory")
    check_keys(inv["system"], ["uuid", "serial", "vendor", "product"], "inventory.system")
    for k, v in inv["system"].items():
        check_string(v, f"inventory.system.{k}")
    require(UUID_RE.match(inv["system"]["uuid"]), "inventory.system.uuid is not canonical")
    check_keys(inv["cpu"], ["count", "model"], "inventory.cpu")
    check_int(inv["cpu"]["count"], "inventory.cpu.count")
    check_string(inv["cpu"]["model"], "inventory.cpu.model")
    check_int(inv["memory_bytes"], "inventory.memory_bytes")
    require(isinstance(inv["nics"], list) and len(inv["nics"]) <= 64, "inventory.nics")
    for n in inv["nics"]:
        check_keys(n, ["name", "mac", "link", "speed_mbps"], "nic")
        check_string(n["name"], "nic.name")
        require(MAC_RE.match(n["mac"]), "nic.mac")
        require(isinstance(n["link"], bool), "nic.link")
        check_int(n["speed_mbps"], "nic.speed_mbps")
    require(isinstance(inv["disks"], list) and len(inv["disks"]) <= 64, "inventory.disks")
    for d in inv["disks"]:
        check_keys(d, ["name", "size_bytes", "model", "serial", "rotational", "removable"], "disk")
        for k in ("name", "model", "serial"):
            check_string(d[k], f"disk.{k}")
        check_int(d["size_bytes"], "disk.size_bytes")
        require(isinstance(d["rotational"], bool) and isinstance(d["removable"], bool), "disk flags")


class Mock:
    def __init__(self, args):
        self.args = args
        self.image = None
        if args.image_dir:
            raw = open(os.path.join(args.image_dir, "manifest.json"), "rb").read()
            m = json.loads(raw)
            self.image = {"name": m["name"], "version": m["version"], "sha256": hashlib.sha256(raw).hexdigest(),
                          "size": m["artifacts"]["disk"]["size"],
                          "url": f"http://127.0.0.1:{args.port}/_metald/images/{m['name']}/{m['version']}",
                          "disk": args.disk, "allow_removable": False, "hostname": args.hostname}
        self.install_state = None       # None, "started", "succeeded", "failed"
        self.session = secrets.token_urlsafe(32)
        self.start = time.monotonic()
        self.lock = threading.Lock()
        self.registrations = 0
        self.heartbeats = 0
        self.install_failed = False
        self.instruction_gets = 0
        self.log = open(args.log, "a", buffering=1)

    def record(self, **kw):
        kw["t"] = round(time.monotonic() - self.start, 3)
        self.log.write(json.dumps(kw) + "\n")

    def instruction(self):
        s = self.args.scenario
        if s == "poweroff":
            return {"action": "poweroff", "reason": "retired"}
        if s == "reboot" and self.heartbeats >= 2:
            return {"action": "reboot", "reason": "boot the installed system"}
        if s == "event409" and self.instruction_gets:
            return {"action": "wait", "reason": "the event was refused"}
        if s == "install" and self.install_state == "succeeded":
            return {"action": "reboot", "reason": "boot the installed system"}
        if s == "install" and self.install_state == "started":
            return {"action": "wait", "reason": "imaging"}      # as metald answers while the install runs
        if s == "install" and self.install_failed:
            return {"action": "wait", "reason": "failed: install failed; waiting for an operator to reimage"}
        if s in ("install", "event409") and self.heartbeats >= 1:
            image = self.image or {"name": "os", "version": 1, "sha256": SHA, "size": 1048576,
                                   "url": "http://127.0.0.1:9/_metald/images/os/1", "disk": "sda",
                                   "allow_removable": False, "hostname": "worker-7"}
            return {"action": "install", "reason": "profile web", "image": image}
        if s == "normal" and self.heartbeats >= 3:
            return {"action": "wait", "reason": "approved"}
        return {"action": "wait", "reason": "waiting for approval"}

    def register(self, body):
        check_keys(body, ["nonce", "boot_mac", "inventory"], "register body")
        require(body["nonce"] == self.args.nonce, "wrong nonce")
        require(body["boot_mac"] == self.args.mac, "wrong boot_mac")
        check_inventory(body["inventory"])
        self.registrations += 1
        if self.args.scenario == "retry503" and self.registrations <= 2:
            return 503, {"error": "metald is starting; retry"}, {"Retry-After": "2"}
        return 200, {"machine": MACHINE, "session": self.session, "state": "registered",
                     "heartbeat_seconds": HEARTBEAT_S, "instruction": self.instruction()}, {}

    def heartbeat(self, body):
        check_keys(body, [], "heartbeat body", optional=["progress", "status"])
        if "progress" in body:
            check_int(body["progress"], "progress", 0, 100)
        if "status" in body:
            check_string(body["status"], "status")
        self.heartbeats += 1
        if self.args.scenario == "hb401" and self.heartbeats >= 3:
            return 401, {"error": "no such session"}, {}
        return 200, {"state": "registered", "heartbeat_seconds": HEARTBEAT_S, "instruction": self.instruction()}, {}

    def event(self, body):
        check_keys(body, ["event"], "event body", optional=["detail", "progress"])
        require(body["event"] in EVENTS, "unknown event")
        if "detail" in body:
            check_string(body["detail"], "detail")
        if "progress" in body:
            check_int(body["progress"], "progress", 0, 100)
        if self.args.scenario == "event409":
            return 409, {"error": f"event {body['event']} is not allowed while the machine is registered"}, {}
        self.install_event(body)
        if body["event"] == "install-failed":
            self.install_failed = True
        return 200, {"state": "registered", "instruction": self.instruction()}, {}

    def install_event(self, body):
        """The order metald's lifecycle allows: started, progress..., then succeeded or failed."""
        ev, st = body["event"], self.install_state
        if ev == "install-started":
            require(st is None, "install-started twice")
            self.install_state = "started"
        elif ev == "install-progress":
            require(st == "started", f"install-progress while {st}")
            require("progress" in body, "install-progress without progress")
        elif ev in ("install-succeeded", "install-failed"):
            require(st == "started", f"{ev} while {st}")
            self.install_state = ev.split("-")[1]

    def image_file(self, path, headers):
        """GET /v1/agent/image/manifest(.sig): the session's image, bearer required."""
        require(headers.get("Authorization") == "Bearer " + self.session, "missing or wrong session")
        if not self.image:
            return 404, None
        name = "manifest.json" if path.endswith("/manifest") else "manifest.json.sig"
        return 200, open(os.path.join(self.args.image_dir, name), "rb").read()

    def get_instruction(self, body):
        self.instruction_gets += 1
        return 200, {"state": "registered", "instruction": self.instruction()}, {}

    def handle(self, method, path, headers, raw):
        routes = {("POST", "/v1/agent/register"): self.register, ("POST", "/v1/agent/heartbeat"): self.heartbeat,
                  ("GET", "/v1/agent/instruction"): self.get_instruction,
                  ("POST", "/v1/agent/events"): self.event}
        fn = routes.get((method, path))
        if not fn:
            return 404, {"error": "unknown route"}, {}, None
        body = None
        try:
            if method == "POST":
                require(headers.get("Content-Type") == "application/json", "Content-Type is not application/json")
                require(len(raw) <= 65536, "body over 64 KiB")
                body = json.loads(raw)
            if path != "/v1/agent/register":
                require(headers.get("Authorization") == "Bearer " + self.session, "missing or wrong session")
            else:
                require("Authorization" not in headers, "register sent an Authorization header")
            status, reply, extra = fn(body)
            return status, reply, extra, body
        except (Violation, ValueError) as e:
            return 400, {"error": str(e)}, {}, {"violation": str(e), "raw": raw.decode(errors="replace")}


RANGE_RE = re.compile(r"^bytes=(\d+)-(\d+)$")


def make_handler(mock):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def send_bytes(self, status, data, extra=()):
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def serve_image_file(self):
            try:
                status, data = mock.image_file(self.path, self.headers)
                entry = {"method": "GET", "path": self.path, "status": status}
            except Violation as e:
                status, data = 401, b""
                entry = {"method": "GET", "path": self.path, "status": 401, "violation": str(e), "raw": ""}
            with mock.lock:
                mock.record(**entry)
            self.send_bytes(status, data or b"")

        def serve_disk(self):
            """The disk artifact as a static file server serves it: one byte range, or all of it."""
            img = mock.image
            if not img or self.path != "/_metald/images/%s/%d/disk" % (img["name"], img["version"]):
                return self.send_bytes(404, b"")
            data = open(os.path.join(mock.args.image_dir, "disk"), "rb").read()
            time.sleep(mock.args.chunk_delay)
            m = RANGE_RE.match(self.headers.get("Range", ""))
            with mock.lock:
                mock.record(method="GET", path=self.path, status=206 if m else 200,
                            range=self.headers.get("Range"))
            if not m:
                return self.send_bytes(200, data)
            first, last = int(m.group(1)), int(m.group(2))
            if first > last or last >= len(data):
                return self.send_bytes(416, b"", [("Content-Range", "bytes */%d" % len(data))])
            self.send_bytes(206, data[first:last + 1], [("Content-Range", "bytes %d-%d/%d" % (first, last, len(data)))])

        def serve(self, method):
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with mock.lock:
                status, reply, extra, body = mock.handle(method, self.path, self.headers, raw)
                entry = {"method": method, "path": self.path, "status": status}
                if body is not None and "violation" in body:
                    entry["violation"] = body["violation"]
                    entry["raw"] = body["raw"]
                elif body is not None:
                    entry["body"] = body
                mock.record(**entry)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path in ("/v1/agent/image/manifest", "/v1/agent/image/manifest.sig"):
                return self.serve_image_file()
            if self.path.startswith("/_metald/images/"):
                return self.serve_disk()
            self.serve("GET")

        def do_POST(self):
            self.serve("POST")

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--nonce", required=True)
    p.add_argument("--mac", required=True)
    p.add_argument("--scenario", default="normal")
    p.add_argument("--session-file")
    p.add_argument("--ready-file")
    p.add_argument("--image-dir")
    p.add_argument("--disk", default="largest")
    p.add_argument("--hostname", default="worker-7")
    p.add_argument("--chunk-delay", type=float, default=0)
    args = p.parse_args()
    mock = Mock(args)
    if args.session_file:
        with open(args.session_file, "w") as f:
            f.write(mock.session)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(mock))
    if args.ready_file:
        open(args.ready_file, "w").close()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
