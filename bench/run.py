#!/usr/bin/env python3
"""loadline's benchmark harness: loadline against wrk and oha, on this machine.

nginx (Debian's, with the echo module for a delayed endpoint) serves on 127.0.0.1,
pinned to CPU 0; every generator is pinned to CPU 1. Each generator's CPU seconds
and peak RSS come from /usr/bin/time -v; commands alternate (A B A B ...) so drift
in the machine's speed hits both sides alike, and ratios are taken pair by pair.

    bench/run.py [plain|scripted|vus|open|start|all] [--rounds N]

Needs: nginx, libnginx-mod-http-echo, wrk (apt), oha (cargo install oha), taskset,
/usr/bin/time. Loopback only; every run is bounded in time.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PORT = 18089
TARGET = f"http://127.0.0.1:{PORT}"
LOADLINE = os.environ.get("LOADLINE_BIN", os.path.join(ROOT, "target", "release", "loadline"))
GEN_CPU = "1"
TARGET_CPU = "0"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def timed(cmd):
    """Runs cmd pinned to the generator's CPU; returns (stdout, cpu_s, rss_mb, wall_s)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        p = subprocess.run(
            ["/usr/bin/time", "-v", "-o", tf.name, "taskset", "-c", GEN_CPU] + cmd,
            text=True,
            capture_output=True,
        )
        report = tf.read()
    if p.returncode not in (0, 3):
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    grab = lambda key: float(re.search(rf"{key}: ([0-9.:]+)", report).group(1).split(":")[-1])
    user, system = grab("User time \\(seconds\\)"), grab("System time \\(seconds\\)")
    rss_mb = grab("Maximum resident set size \\(kbytes\\)") / 1024
    wall = report_wall(report)
    return p.stdout, user + system, rss_mb, wall


def report_wall(report):
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([0-9:.]+)", report)
    parts = [float(x) for x in m.group(1).split(":")]
    secs = 0.0
    for x in parts:
        secs = secs * 60 + x
    return secs


class Nginx:
    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="loadline-bench-")
        with open(os.path.join(ROOT, "bench", "nginx.conf")) as f:
            conf = f.read().replace("PREFIX", self.dir).replace("PORT", str(PORT))
        path = os.path.join(self.dir, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen(
            ["taskset", "-c", TARGET_CPU, "nginx", "-c", path, "-p", self.dir],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(50):
            try:
                sh(["curl", "-sf", TARGET + "/"])
                return self
            except subprocess.CalledProcessError:
                time.sleep(0.1)
        sys.exit("nginx did not start")

    def __exit__(self, *a):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def scenario(name, **subst):
    with open(os.path.join(ROOT, "bench", "scenarios", name)) as f:
        text = f.read()
    for k, v in subst.items():
        text = text.replace(k, v)
    fd, path = tempfile.mkstemp(suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def loadline(path):
    out = tempfile.mktemp(suffix=".json")
    _, cpu, rss, wall = timed([LOADLINE, "run", path, "--quiet", "--summary-json", out])
    with open(out) as f:
        summary = json.load(f)
    os.unlink(out)
    return summary, cpu, rss, wall


def wrk(path, conns, secs):
    out, cpu, rss, wall = timed(["wrk", "-t1", f"-c{conns}", f"-d{secs}s", TARGET + path])
    n = int(re.search(r"(\d+) requests in", out).group(1))
    return n, cpu, rss, wall


def oha(args):
    out, cpu, rss, wall = timed(["oha", "--no-tui", "--output-format", "json"] + args)
    data = json.loads(out)
    n = sum(data.get("statusCodeDistribution", {}).values())
    return data, n, cpu, rss, wall


def med(xs):
    return statistics.median(xs)


def fmt_row(name, vals, unit=""):
    return f"  {name:<44} median {med(vals):>10.3f}{unit}   min {min(vals):.3f}   max {max(vals):.3f}"


def bench_plain(rounds):
    print("\n## plain keep-alive GET /, 64 connections, 10 s (requests per CPU-second of the generator)")
    path = scenario("plain.yaml")
    ll, wk, oh, rss, ratio_wrk, ratio_oha = [], [], [], [], [], []
    for _ in range(rounds):
        n, cpu, r_w, _ = wrk("/", 64, 10)
        wk.append(n / cpu)
        _, n2, cpu2, _, _ = oha(["-z", "10s", "-c", "64", TARGET + "/"])
        oh.append(n2 / cpu2)
        s, cpu3, r_l, _ = loadline(path)
        ll.append(s["requests"]["total"] / cpu3)
        rss.append(r_l)
        ratio_wrk.append(ll[-1] / wk[-1])
        ratio_oha.append(ll[-1] / oh[-1])
    print(fmt_row("wrk req/CPU-s", wk))
    print(fmt_row("oha req/CPU-s", oh))
    print(fmt_row("loadline req/CPU-s", ll))
    print(fmt_row("loadline / wrk (pair by pair)", ratio_wrk))
    print(fmt_row("loadline / oha (pair by pair)", ratio_oha))
    print(fmt_row("loadline peak RSS", rss, " MB"))
    return med(ll)


def bench_scripted(rounds):
    print("\n## scripted 3-step flow (JSON capture + template + check per step) vs plain GET, 64 VUs, 10 s")
    plain, scripted = scenario("plain.yaml"), scenario("scripted.yaml")
    a, b, ratio = [], [], []
    for _ in range(rounds):
        s, cpu, _, _ = loadline(plain)
        a.append(s["requests"]["total"] / cpu)
        s2, cpu2, _, _ = loadline(scripted)
        assert s2["checks"]["failed"] == 0 and s2["requests"]["failed"] == 0, s2
        b.append(s2["requests"]["total"] / cpu2)
        ratio.append(b[-1] / a[-1])
    print(fmt_row("plain req/CPU-s", a))
    print(fmt_row("scripted req/CPU-s", b))
    print(fmt_row("scripted / plain (pair by pair)", ratio))


def bench_vus(rounds):
    print("\n## 5,000 VUs on a 30 ms endpoint: peak RSS, 10 s vs 60 s")
    short, long = scenario("vus5000.yaml", DURATION="10s"), scenario("vus5000.yaml", DURATION="60s")
    r10, r60, rate = [], [], []
    for _ in range(max(1, rounds // 2)):
        s, _, rss, _ = loadline(short)
        r10.append(rss)
        rate.append(s["requests"]["rate"])
        _, _, rss2, _ = loadline(long)
        r60.append(rss2)
    print(fmt_row("peak RSS, 10 s run", r10, " MB"))
    print(fmt_row("peak RSS, 60 s run", r60, " MB"))
    print(fmt_row("requests/s achieved (5000 / 30 ms = 166k max)", rate))


def bench_open(rounds):
    print("\n## open model: 20,000 arrivals/s for 5 s against GET / (CPU-seconds per 1,000 requests)")
    path = scenario("open20k.yaml")
    ll, oh, lag, held = [], [], [], []
    for _ in range(rounds):
        s, cpu, _, _ = loadline(path)
        n = s["requests"]["total"]
        ll.append(cpu / n * 1000)
        lag.append(s["schedule_lag_ms"]["p99"])
        held.append(s["iterations"]["total"] / 100000 * 100)
        assert s["iterations"]["dropped"] == 0, s["iterations"]
        data, n2, cpu2, _, _ = oha(["-z", "5s", "-q", "20000", "-c", "64", "--latency-correction", TARGET + "/"])
        oh.append(cpu2 / n2 * 1000)
    print(fmt_row("loadline CPU-s per 1k requests", ll))
    print(fmt_row("oha CPU-s per 1k requests", oh))
    print(fmt_row("loadline / oha (lower is better)", [a / b for a, b in zip(ll, oh)]))
    print(fmt_row("loadline iterations, % of plan", held, " %"))
    print(fmt_row("loadline schedule lag p99", lag, " ms"))


def bench_start(rounds):
    print("\n## 10,000 VUs, one iteration each: wall time to finish (an upper bound on start-up)")
    path = scenario("start10k.yaml")
    walls, rss = [], []
    for _ in range(rounds):
        s, _, r, _ = loadline(path)
        assert s["iterations"]["total"] == 10000, s["iterations"]
        walls.append(s["duration_s"])
        rss.append(r)
    print(fmt_row("run duration", walls, " s"))
    print(fmt_row("peak RSS", rss, " MB"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", nargs="?", default="all", choices=["plain", "scripted", "vus", "open", "start", "all"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-build", action="store_true", help="use target/release/loadline as it is")
    args = ap.parse_args()
    if not args.no_build:
        sh(["cargo", "build", "--release", "-q", "-p", "loadline-cli"], cwd=ROOT)
    print(f"{sh([LOADLINE, '--version']).stdout.strip()}; wrk {wrk_version()}; {sh(['oha', '--version']).stdout.strip()}; {nginx_version()}")
    print(f"machine: {os.cpu_count()} CPUs ({cpu_model()}); nginx pinned to CPU {TARGET_CPU}, generators to CPU {GEN_CPU}; {args.rounds} rounds")
    with Nginx():
        for name, fn in [("plain", bench_plain), ("scripted", bench_scripted), ("vus", bench_vus), ("open", bench_open), ("start", bench_start)]:
            if args.which in (name, "all"):
                fn(args.rounds)


def wrk_version():
    p = subprocess.run(["wrk", "-v"], text=True, capture_output=True)
    m = re.search(r"wrk ([0-9.]+)", p.stdout + p.stderr)
    return m.group(1) if m else "?"


def nginx_version():
    p = subprocess.run(["nginx", "-v"], text=True, capture_output=True)
    return (p.stderr or p.stdout).strip().replace("nginx version: ", "")


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "?"


if __name__ == "__main__":
    main()
