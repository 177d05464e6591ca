#!/usr/bin/env python3
"""Plays systemd's part of the sd_notify protocol for tests: binds a unix
datagram socket, records every message, and exits 0 on READY=1 (1 on timeout).
Usage: notify-wait.py SOCKET TIMEOUT_SECONDS LOGFILE"""
import os
import socket
import sys
import time

path, timeout, logfile = sys.argv[1], float(sys.argv[2]), sys.argv[3]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
open(path + ".bound", "w").close()
deadline = time.monotonic() + timeout
with open(logfile, "a") as log:
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            msg = s.recv(4096).decode(errors="replace")
        except socket.timeout:
            break
        log.write(msg.replace("\n", " ") + "\n")
        log.flush()
        if "READY=1" in msg.split("\n"):
            sys.exit(0)
sys.exit(1)
