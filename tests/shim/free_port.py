#!/usr/bin/env python3
# free_port.py — prints a TCP port free on every address, for a function
# that listens on 0.0.0.0:$PORT (tests/shim/run_tests.sh,
# bench/shim/start_latency.sh).
#
# Not one the kernel hands out for port 0: a port free on 127.0.0.1 may be
# some outgoing connection's on another address, and the function's listen
# then failed with "address already in use" (seen once in about ten runs).
# Below the ephemeral range, no outgoing connection takes it meanwhile.
import random
import socket
import sys

with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
    low = int(f.read().split()[0])
for _ in range(500):
    port = random.randint(10000, max(10001, low - 1))
    s = socket.socket()
    try:
        s.bind(("0.0.0.0", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    sys.exit(0)
sys.exit("free_port.py: no free port found")
