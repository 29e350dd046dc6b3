#!/usr/bin/env python3
"""Userspace instructions per echoed datagram, lanegate against baseline-quinn.

Wall-clock CPU figures on a shared 2-vCPU machine move by 20 % between
runs; instruction counts do not. Each server runs under callgrind twice,
driven by the same 100 bots (5 critical datagrams a second each) for a short
and a long time; the difference between the two runs is the cost of the
extra echoes alone (handshakes and start-up cancel out). Kernel time is not
counted: read it next to `perf` profiles (BENCHMARKS.md).

Usage (after `cargo build --release -p lanegate-benches -p lanegate-gateway`):

    python3 benches/callgrind_echo.py [--short 3] [--long 11] [--clients 100]

Needs valgrind. Pins servers to CPU 0 and bots to CPU 1.
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release")
RATE_PER_S = 5
START_TIMEOUT_S = 150

THROUGHPUT_TOML = """
[gateway]
cores = [0]
io_backend = "io_uring"
handshakes_per_ip_per_s = 1000000
handshake_burst = 1000000
connections_per_ip_max = 1000000
unvalidated_connections_max = 20000
retry_above_handshakes_per_s = 4294967295
connections_max = 20000

[shards]
cores = [0]
game = "echo"

[admission]
abuse_drops_max = 1000000000

[observability]
metrics_listen = "off"

[lanes.limits.critical]
rate_per_s = 1000000
burst = 1000000
"""

# Where a function's instructions are counted. Order matters: the first
# match wins ("lanegate_udp::uring::" must not read as the ring crate).
CATEGORIES = [
    ("server code", r"lanegate|baseline_quinn"),
    ("crypto (ring, rustls)", r"ring_core|(^|[^u])ring::|rustls"),
    ("quinn-proto", r"quinn_proto"),
    ("quinn async layer", r"quinn::|quinn_udp"),
    ("tokio, tracing", r"tokio|tracing"),
    ("libc memory", r"memcpy|memset|memmove|malloc|free|_int_|realloc"),
]


def self_costs(path):
    """Self instruction count per function name in a callgrind output."""
    names, costs = {}, collections.Counter()
    fn, skip = None, False
    with open(path, errors="replace") as f:
        for line in f:
            m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
            if m:
                if m.group(3):
                    names[m.group(2)] = m.group(3)
                if m.group(1) == "fn":
                    fn = names.get(m.group(2), m.group(2))
                continue
            if line.startswith("calls="):
                skip = True  # the next cost line is inclusive, not self
                continue
            if line[:1].isdigit() or line[:1] in "+-*":
                parts = line.split()
                if skip:
                    skip = False
                elif fn is not None and len(parts) >= 2 and parts[1].isdigit():
                    costs[fn] += int(parts[1])
    return costs


def run(kind, seconds, clients, work, port):
    out = os.path.join(work, f"cg.{kind}.{seconds}")
    if kind == "lanegate":
        toml = os.path.join(work, "lanegate.toml")
        with open(toml, "w") as f:
            f.write(THROUGHPUT_TOML)
        cmd = [os.path.join(BIN, "lanegate"), "serve", "--listen", f"127.0.0.1:{port}",
               "--config", toml]
    else:
        cmd = [os.path.join(BIN, "baseline-quinn"), "--listen", f"127.0.0.1:{port}"]
    log = open(os.path.join(work, f"{kind}.{seconds}.log"), "w+")
    server = subprocess.Popen(
        ["taskset", "-c", "0", "valgrind", "--tool=callgrind",
         f"--callgrind-out-file={out}"] + cmd,
        stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, RUST_LOG="warn"))
    fingerprint = None
    deadline = time.monotonic() + START_TIMEOUT_S
    while fingerprint is None and time.monotonic() < deadline:
        time.sleep(0.5)
        log.seek(0)
        for line in log:
            if line.startswith("fingerprint "):
                fingerprint = line.split()[1]
    if fingerprint is None:
        server.kill()
        sys.exit(f"{kind} printed no fingerprint in {START_TIMEOUT_S} s")
    report = os.path.join(work, f"bots.{kind}.{seconds}.json")
    subprocess.run(
        ["taskset", "-c", "1", os.path.join(BIN, "lanegate"), "bots",
         "--server", f"127.0.0.1:{port}", "--fingerprint", fingerprint,
         "--clients", str(clients), "--connect-rate", str(clients),
         "--duration", f"{seconds}s", "--rate", f"critical={RATE_PER_S}",
         "--rate", "high=0", "--rate", "normal=0", "--rate", "bulk=0",
         "--json", report],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Dump while the server still runs: a drain's close handshakes would
    # land in one run and not the other.
    subprocess.run(["callgrind_control", "-d", str(server.pid)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)
    server.kill()
    server.wait()
    with open(report) as f:
        received = json.load(f)["lanes"]["critical"]["received"]
    dumps = sorted(p for p in os.listdir(work) if p.startswith(f"cg.{kind}.{seconds}."))
    if not dumps:
        sys.exit(f"callgrind wrote no dump for {kind}")
    return self_costs(os.path.join(work, dumps[-1])), received


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--short", type=int, default=3, help="seconds of play, short run")
    ap.add_argument("--long", type=int, default=11, help="seconds of play, long run")
    ap.add_argument("--clients", type=int, default=100)
    args = ap.parse_args()
    totals = {}
    with tempfile.TemporaryDirectory(prefix="callgrind-echo-") as work:
        for i, kind in enumerate(["lanegate", "baseline-quinn"]):
            port = 7400 + i
            short, n_short = run(kind, args.short, args.clients, work, port)
            long, n_long = run(kind, args.long, args.clients, work, port)
            echoes = n_long - n_short
            diff = {k: long.get(k, 0) - short.get(k, 0) for k in set(short) | set(long)}
            per_echo = sum(diff.values()) / echoes
            totals[kind] = per_echo
            cats = collections.Counter()
            for name, cost in diff.items():
                label = next((c for c, rx in CATEGORIES if re.search(rx, name)), "other")
                cats[label] += cost
            print(f"{kind}: {per_echo:,.0f} instructions per echo ({echoes} echoes)")
            for label, cost in cats.most_common():
                print(f"  {cost / echoes:>8,.0f}  {label}")
    print(f"ratio lanegate / baseline-quinn: "
          f"{totals['lanegate'] / totals['baseline-quinn']:.3f}")


if __name__ == "__main__":
    main()
