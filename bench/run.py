#!/usr/bin/env python3
"""The measuring half of scripts/bench: cold start, throughput, latency and peak memory of the
floor (a bare hyper server), vodhook and the peer (Flask under gunicorn), side by side in one run,
then the report (stdout, and the "Serve" section of BENCHMARKS.md).

Runs are interleaved (floor, vodhook, peer, floor, ...) so that load from elsewhere on a shared
machine hits all three alike; the ratios between them are the figures to trust, more than the
absolute numbers. Every server's stdout and stderr go to /dev/null, so terminal or disk speed
never counts. This measures; it asserts nothing but "the servers answered 200".
"""

import argparse
import datetime
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVERS = ("floor", "vodhook", "peer")
MIB = 1024 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """How to start one of the three, on a given port."""

    def __init__(self, name, argv, env=None, cwd=None):
        self.name, self.argv, self.env, self.cwd = name, argv, env or {}, cwd

    def spawn(self, port):
        env = dict(os.environ)
        env.update({k: v.format(port=port) for k, v in self.env.items()})
        argv = [a.format(port=port) for a in self.argv]
        return subprocess.Popen(
            argv,
            env=env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so gunicorn's workers go with it
        )


def stop(proc, sig=signal.SIGKILL):
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def http_request(port, body):
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def first_answer(port, request, proc, timeout=30.0):
    """Polls connect() as fast as it can until the server answers; returns (status, body)."""
    deadline = time.perf_counter() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering")
        if time.perf_counter() > deadline:
            raise RuntimeError("server did not answer in time")
        s = socket.socket()
        try:
            s.connect(("127.0.0.1", port))
        except (ConnectionRefusedError, ConnectionResetError):
            s.close()
            continue
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.sendall(request)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            continue  # accepted before it was ready (gunicorn's master): try again
        finally:
            s.close()
        if not data:
            continue
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        return status, body


def cold_starts(servers, body, runs):
    """spawn → first 200 on the callback, `runs` times each, interleaved; milliseconds."""
    times = {s.name: [] for s in servers}
    answers = {}
    for i in range(runs):
        order = servers[i % len(servers) :] + servers[: i % len(servers)]
        for server in order:
            port = free_port()
            request = http_request(port, body)
            t0 = time.perf_counter()
            proc = server.spawn(port)
            try:
                status, reply = first_answer(port, request, proc)
                elapsed = time.perf_counter() - t0
            finally:
                stop(proc)
            if status != 200:
                raise RuntimeError(f"{server.name} answered {status}: {reply[:300]!r}")
            answers[server.name] = reply.decode(errors="replace")
            times[server.name].append(elapsed * 1000)
    return times, answers


def process_tree(root):
    """root and all its descendants (gunicorn: master and workers)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(parents.get(pid, []))
    return tree


def peak_rss_kib(root):
    """VmHWM summed over the process tree (for gunicorn this counts shared pages once per process)."""
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                m = re.search(r"^VmHWM:\s+(\d+) kB", f.read(), re.M)
        except OSError:
            continue
        if m:
            total += int(m.group(1))
    return total


def cpu_seconds(root):
    """utime + stime of the process tree so far (all threads; gunicorn's workers included)."""
    ticks = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def load_run(server, body_path, args, fresh=False):
    port = free_port()
    proc = server.spawn(port)
    try:
        with open(body_path, "rb") as f:
            status, reply = first_answer(port, http_request(port, f.read()), proc)
        if status != 200:
            raise RuntimeError(f"{server.name} answered {status}: {reply[:300]!r}")
        time.sleep(1.0)  # let every worker finish booting (gunicorn) before the clock starts
        cpu_before = cpu_seconds(proc.pid)
        out = subprocess.run(
            [
                args.wrk,
                f"-t{args.threads}",
                f"-c{args.connections}",
                f"-d{args.duration}s",
                "--timeout",
                "10s",
                "-s",
                os.path.join(HERE, "post.lua"),
                f"http://127.0.0.1:{port}/",
            ],
            env=dict(os.environ, BENCH_BODY=body_path, BENCH_FRESH="1" if fresh else "0"),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rss = peak_rss_kib(proc.pid)
        cpu = cpu_seconds(proc.pid) - cpu_before
    finally:
        stop(proc, signal.SIGTERM)
    line = next(l for l in out.splitlines() if l.startswith("BENCH_JSON "))
    result = json.loads(line[len("BENCH_JSON ") :])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["peak_rss_kib"] = rss
    # CPU time the server spent per request: what it costs whatever share of the machine it gets.
    result["cpu_us_per_request"] = cpu * 1e6 / max(result["requests"], 1)
    return result


def median_run(runs):
    """The run with the median throughput (its latency and RSS figures go with it), plus the max RSS."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    chosen = dict(ordered[len(ordered) // 2])
    chosen["all_rps"] = [round(r["rps"]) for r in runs]
    chosen["peak_rss_kib"] = max(r["peak_rss_kib"] for r in runs)
    chosen["errors_total"] = sum(sum(r["errors"].values()) for r in runs)
    return chosen


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            return m.group(1).strip() if m else platform.processor()
    except OSError:
        return platform.processor()


def measure(args):
    floor = Server("floor", [args.floor], env={"VODHOOK_LISTEN": "127.0.0.1:{port}"})
    # As on Function Compute: FC_FUNCTION_NAME set (JSON log lines), the port from the environment.
    vodhook = Server(
        "vodhook",
        [args.vodhook, "serve"],
        env={"VODHOOK_LISTEN": "127.0.0.1:{port}", "FC_FUNCTION_NAME": "vodhook-bench"},
    )
    peer = Server(
        "peer",
        [os.path.join(args.venv, "bin", "gunicorn"), *args.peer_args.split(), "-b", "127.0.0.1:{port}", "app:app"],
        cwd=os.path.join(HERE, "peer"),
    )
    servers = [floor, vodhook, peer]
    # `FILE+fresh`: the same body with a new TaskId per request (post.lua's BENCH_FRESH).
    bodies = [(os.path.abspath(b.removesuffix("+fresh")), b.endswith("+fresh")) for b in args.bodies]
    with open(bodies[0][0], "rb") as f:
        first_body = f.read()

    print(f"cold start: {args.runs} runs each, interleaved, body {os.path.basename(bodies[0][0])}", file=sys.stderr)
    cold, answers = cold_starts(servers, first_body, args.runs)
    load = {}
    for body, fresh in bodies:
        name = os.path.basename(body) + (", a fresh TaskId each" if fresh else ", repeated")
        runs = {s.name: [] for s in servers}
        for rep in range(args.repeat):
            for server in servers:
                print(f"load: {name} {server.name} run {rep + 1}/{args.repeat}", file=sys.stderr)
                runs[server.name].append(load_run(server, body, args, fresh))
        load[name] = {k: median_run(v) for k, v in runs.items()}
    sizes = {
        "floor": os.path.getsize(args.floor),
        "vodhook": os.path.getsize(args.vodhook),
    }
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"nproc": os.cpu_count(), "cpu": cpu_model(), "kernel": platform.release()},
        "settings": {
            "runs": args.runs,
            "duration_s": args.duration,
            "connections": args.connections,
            "threads": args.threads,
            "repeat": args.repeat,
            "peer": f"gunicorn {args.peer_args}",
            "profile": args.profile,
        },
        "cold_start_ms": {k: {"median": statistics.median(v), "min": min(v), "max": max(v)} for k, v in cold.items()},
        "answers": answers,
        "load": load,
        "size_bytes": sizes,
    }


# --- the report ------------------------------------------------------------------------------


def verdict(ok):
    return "met" if ok else "MISSED"


def report(results, decode_summary):
    cold = results["cold_start_ms"]
    c = {k: v["median"] for k, v in cold.items()}
    lines = []
    m = results["machine"]
    st = results["settings"]
    lines.append(f"Measured {results['date']} on {m['nproc']} cores ({m['cpu']}, Linux {m['kernel']}), shared with")
    lines.append("other work: trust the ratios (one interleaved run) more than the absolute figures.")
    lines.append(
        f"Profile `{st['profile']}`; wrk {st['threads']} threads, {st['connections']} connections, "
        f"{st['duration_s']} s, median of {st['repeat']} runs; cold start median of {st['runs']}; "
        f"peer: `{st['peer']}` (Flask app in `bench/peer/`); vodhook as on FC (`FC_FUNCTION_NAME` set: "
        "JSON log lines, default `log` channel). All output to /dev/null. \"Server CPU per request\" is the "
        "server's user+system time during the load run divided by the requests served: unlike req/s it does "
        "not depend on the share of the machine the server got (wrk runs on the same 2 cores)."
    )
    lines.append("")
    lines.append("| | floor (hyper) | vodhook | peer (Flask) | vodhook ÷ floor | vodhook better than peer by |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    lines.append(
        f"| cold start, spawn → first 200 (median ms) | {c['floor']:.2f} | {c['vodhook']:.2f} | "
        f"{c['peer']:.1f} | {c['vodhook'] / c['floor']:.2f}× | {c['peer'] / c['vodhook']:.0f}× |"
    )
    lo = {k: v["min"] for k, v in cold.items()}
    lines.append(
        f"| cold start, best of {st['runs']} (ms) | {lo['floor']:.2f} | {lo['vodhook']:.2f} | {lo['peer']:.1f} | "
        f"{lo['vodhook'] / lo['floor']:.2f}× | {lo['peer'] / lo['vodhook']:.0f}× |"
    )
    goals = []
    goals.append(("cold start ≤ 1.2× floor", c["vodhook"] / c["floor"] <= 1.2, f"{c['vodhook'] / c['floor']:.2f}×"))
    goals.append(("cold start ≥ 30× faster than peer", c["peer"] / c["vodhook"] >= 30, f"{c['peer'] / c['vodhook']:.0f}×"))
    worst_rss = 0
    for body, load in results["load"].items():
        f, v, p = load["floor"], load["vodhook"], load["peer"]
        lines.append(
            f"| `{body}`: throughput (req/s) | {f['rps']:,.0f} | {v['rps']:,.0f} | {p['rps']:,.0f} | "
            f"{v['rps'] / f['rps']:.2f}× | {v['rps'] / p['rps']:.0f}× |"
        )
        lines.append(
            f"| `{body}`: p50 / p99 latency (ms) | {f['latency_us']['p50'] / 1000:.2f} / "
            f"{f['latency_us']['p99'] / 1000:.2f} | {v['latency_us']['p50'] / 1000:.2f} / "
            f"{v['latency_us']['p99'] / 1000:.2f} | {p['latency_us']['p50'] / 1000:.1f} / "
            f"{p['latency_us']['p99'] / 1000:.1f} | {v['latency_us']['p99'] / f['latency_us']['p99']:.2f}× (p99) | "
            f"{p['latency_us']['p99'] / v['latency_us']['p99']:.0f}× (p99) |"
        )
        if all("cpu_us_per_request" in load[k] for k in SERVERS):
            fc, vc, pc = (load[k]["cpu_us_per_request"] for k in SERVERS)
            lines.append(
                f"| `{body}`: server CPU per request (µs) | {fc:.1f} | {vc:.1f} | {pc:.0f} | "
                f"{vc / fc:.2f}× | {pc / vc:.0f}× |"
            )
            goals.append((f"{body}: server CPU per request ≤ 2.5× floor", vc / fc <= 2.5, f"{vc / fc:.2f}×"))
        lines.append(
            f"| `{body}`: peak RSS under load (MiB) | {f['peak_rss_kib'] / 1024:.1f} | "
            f"{v['peak_rss_kib'] / 1024:.1f} | {p['peak_rss_kib'] / 1024:.1f} | "
            f"{v['peak_rss_kib'] / f['peak_rss_kib']:.2f}× | {p['peak_rss_kib'] / v['peak_rss_kib']:.1f}× |"
        )
        errors = {k: load[k]["errors_total"] for k in SERVERS}
        if any(errors.values()):
            lines.append(f"| `{body}`: wrk errors (all runs) | {errors['floor']} | {errors['vodhook']} | {errors['peer']} | | |")
        goals.append((f"{body}: throughput ≥ 0.6× floor", v["rps"] / f["rps"] >= 0.6, f"{v['rps'] / f['rps']:.2f}×"))
        goals.append((f"{body}: throughput ≥ 15× peer", v["rps"] / p["rps"] >= 15, f"{v['rps'] / p['rps']:.0f}×"))
        worst_rss = max(worst_rss, v["peak_rss_kib"])
    s = results["size_bytes"]
    lines.append(
        f"| binary size, stripped (MiB) | {s['floor'] / MIB:.2f} | {s['vodhook'] / MIB:.2f} | (Python) | "
        f"{s['vodhook'] / s['floor']:.1f}× | |"
    )
    goals.append(("peak RSS under load ≤ 20 MiB", worst_rss <= 20 * 1024, f"{worst_rss / 1024:.1f} MiB"))
    goals.append(("stripped binary ≤ 8 MiB", s["vodhook"] <= 8 * MIB, f"{s['vodhook'] / MIB:.2f} MiB"))
    lines.append("")
    lines.append("Throughput runs per server (req/s, all repeats): " + "; ".join(
        f"`{body}` " + ", ".join(f"{k} {load[k]['all_rps']}" for k in SERVERS) for body, load in results["load"].items()
    ) + ".")
    lines.append("")
    lines.append("| goal | result | |")
    lines.append("|---|---:|---|")
    for name, ok, value in goals:
        lines.append(f"| {name} | {value} | {verdict(ok)} |")
    lines.append("")
    lines.append("Decode (criterion, `cargo bench --bench decode`):")
    lines.append("")
    if decode_summary:
        lines.append("```")
        lines.extend(decode_summary)
        lines.append("```")
        ratios = decode_ratios(decode_summary)
        if ratios:
            lines.append("")
            lines.append(
                "decode ÷ bare `serde_json::Value` parse of the same bytes (goal ≤ 2×): "
                + ", ".join(f"{name} {r:.1f}× ({verdict(r <= 2)})" for name, r in ratios)
                + "."
            )
    else:
        lines.append("no decode benchmark results in this build (the bench is empty or did not run).")
    return "\n".join(lines)


def decode_lines(path):
    """Criterion's `name ... time: [lo mid hi]` lines, one per benchmark."""
    if not path or not os.path.exists(path):
        return []
    with open(path, errors="replace") as f:
        text = f.read()
    out, last_name = [], None
    for line in text.splitlines():
        if "time:" in line:
            if "%" in line.split("time:", 1)[1]:
                continue  # criterion's change against its previous run, not a time
            name = line.split("time:")[0].strip() or last_name or "?"
            out.append(f"{name:<48} time: {line.split('time:', 1)[1].strip()}")
        elif line.strip() and not line.startswith((" ", "Benchmarking", "Found", "Gnuplot", "change", "Performance")):
            last_name = line.strip()
    return out


def decode_ratios(summary):
    """(input, decode_delivery ÷ serde_json-Value) from the middle estimates of criterion's lines."""
    mids = {}
    for line in summary:
        name, _, rest = line.partition(" time: ")
        parts = rest.strip("[]").split()
        if len(parts) >= 4:
            factor = {"ns": 1e-3, "µs": 1.0, "us": 1.0, "ms": 1e3, "s": 1e6}.get(parts[3])
            if factor:
                mids[name.strip()] = float(parts[2]) * factor
    out = []
    for name, decode in mids.items():
        if name.endswith("/decode_delivery"):
            bare = mids.get(name[: -len("decode_delivery")] + "serde_json-Value")
            if bare:
                out.append((name.rsplit("/", 1)[0], decode / bare))
    return out


SECTION = "## Serve: cold start, throughput, memory, size"


def write_markdown(path, body):
    """Replaces (or appends) our section, leaving every other section as it is."""
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    section = f"{SECTION}\n\nWritten by `./scripts/bench`; rerun it to refresh.\n\n{body}\n"
    pattern = re.compile(re.escape(SECTION) + r"\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)


def compare(args):
    """Cold start of two vodhook builds side by side (`--baseline`, e.g. main before a change, and
    `--vodhook`), with the built-in configuration and with `--config`; runs interleaved, so the
    machine's load hits both alike. Prints a Markdown table."""
    def server(name, binary, config):
        env = {"VODHOOK_LISTEN": "127.0.0.1:{port}", "FC_FUNCTION_NAME": "vodhook-bench"}
        if config:
            env["VODHOOK_CONFIG"] = os.path.abspath(config)
        return Server(name, [binary, "serve"], env=env)

    with open(os.path.abspath(args.bodies[0].removesuffix("+fresh")), "rb") as f:
        body = f.read()
    rows = []
    for label, config in (("built-in configuration", None), (os.path.basename(args.config), args.config)):
        servers = [server("before", args.baseline, config), server("after", args.vodhook, config)]
        print(f"cold start ({label}): {args.runs} runs each, interleaved", file=sys.stderr)
        times, _ = cold_starts(servers, body, args.runs)
        before, after = (statistics.median(times[n]) for n in ("before", "after"))
        best_before, best_after = min(times["before"]), min(times["after"])
        rows.append(
            f"| {label} | {before:.2f} ms | {after:.2f} ms | {after / before:.2f}× "
            f"| {best_before:.2f} ms | {best_after:.2f} ms |"
        )
    print("| configuration | before, median | after, median | after/before | before, best | after, best |")
    print("|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--floor")
    ap.add_argument("--vodhook")
    ap.add_argument("--venv", help="the venv with Flask and gunicorn")
    ap.add_argument("--peer-args", default="-w 2 -k gthread --threads 4")
    ap.add_argument("--bodies", nargs="+")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--wrk", default="wrk")
    ap.add_argument("--profile", default="release")
    ap.add_argument("--results", help="where the raw figures go (JSON); required unless --baseline")
    ap.add_argument("--report-only", action="store_true", help="report from an earlier --results file")
    ap.add_argument("--decode-log", help="criterion's output, to include its summary")
    ap.add_argument("--markdown", help="write the report into this file's Serve section")
    ap.add_argument("--baseline", help="compare cold starts with this other vodhook binary, and nothing else")
    ap.add_argument("--config", help="with --baseline: the configuration for the second comparison")
    args = ap.parse_args()
    for name in ("floor", "vodhook", "venv", "baseline"):
        if getattr(args, name):
            setattr(args, name, os.path.abspath(getattr(args, name)))
    if args.baseline:
        compare(args)
        return

    if not args.results:
        ap.error("--results is required")
    if args.report_only:
        with open(args.results) as f:
            results = json.load(f)
    else:
        results = measure(args)
        with open(args.results, "w") as f:
            json.dump(results, f, indent=2)
    text = report(results, decode_lines(args.decode_log))
    print(text)
    if args.markdown:
        write_markdown(args.markdown, text)
        print(f"\n(written into {args.markdown})", file=sys.stderr)


if __name__ == "__main__":
    main()
