#!/usr/bin/env python3
"""Peak memory of `vodhook serve` on the largest inputs its limits let through (and a few they
refuse), for BENCHMARKS.md ("Memory"). Measures, asserts nothing but that the server answered.

Each case runs against a fresh release binary configured with a `log` channel and a `webhook`
channel to a local sink that reads and discards every request (on 127.0.0.1), and reports the
process's peak RSS (VmHWM) after the case. Usage: bench/memory.py path/to/vodhook
"""

import concurrent.futures
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

MIB = 1024 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Huge(http.server.BaseHTTPRequestHandler):
    """Answers every request with 1 GiB of whitespace, written as it goes: a receiver (or a VOD
    API) that answers far more than anyone reads."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(1024 * MIB))
        self.end_headers()
        chunk = b" " * (64 * 1024)
        try:
            for _ in range(1024 * MIB // len(chunk)):
                self.wfile.write(chunk)
        except OSError:
            pass  # the reader stopped reading: what we want

    def log_message(self, *args):
        pass


def workflow(task, nodes, message_bytes):
    activities = {
        f"VodTranscode_{i:05}": {
            "ActivityId": "VodTranscode",
            "Status": "Failed",
            "StartTime": "2025-04-01T02:29:46Z",
            "EndTime": "2025-04-01T02:30:46Z",
            "Result": {"ErrorCode": "InvalidParameter", "ErrorMessage": "x" * message_bytes},
        }
        for i in range(nodes)
    }
    return {
        "EventType": "WorkflowTaskComplete", "TaskId": task, "Status": "Failed", "VideoId": "v",
        "ActivityResults": json.dumps(activities),
        "TaskInput": json.dumps({"Type": "Media", "Media": "v", "Title": "t" * 1000}),
    }


def many_nodes(nodes):
    """A workflow event with `nodes` minimal nodes (the attack's shape: 15000 nodes in 839 KiB)."""
    activities = {f"N{i}": {"Status": "Succeed"} for i in range(nodes)}
    return {"EventType": "WorkflowTaskComplete", "TaskId": "many", "Status": "Succeed", "ActivityResults": json.dumps(activities)}


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def post(port, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def run(binary, sink_port, name, body, copies=1, extra="", channels=("log", "hook")):
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as config:
        config.write(extra)
        config.write(
            f'[[channels]]\nname = "log"\ntype = "log"\n\n[[channels]]\nname = "hook"\ntype = "webhook"\n'
            f'url = "http://127.0.0.1:{sink_port}/hook"\n\n[[routes]]\nname = "all"\nchannels = {json.dumps(list(channels))}\n'
        )
    env = dict(os.environ, VODHOOK_LISTEN=f"127.0.0.1:{port}", VODHOOK_CONFIG=config.name, RUST_LOG="warn",
               ALIBABA_CLOUD_ACCESS_KEY_ID="LTAIbench", ALIBABA_CLOUD_ACCESS_KEY_SECRET="bench-secret")
    proc = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.01)
        idle = peak_rss_kib(proc.pid)
        with concurrent.futures.ThreadPoolExecutor(copies) as pool:
            statuses = list(pool.map(lambda _: post(port, body), range(copies)))
        peak = peak_rss_kib(proc.pid)
    finally:
        proc.kill()
        proc.wait()
        os.unlink(config.name)
    print(f"| {name} | {len(body) / 1024:.0f} KiB × {copies} | {sorted(set(statuses))} | {idle / 1024:.1f} MiB | {peak / 1024:.1f} MiB |")


def main():
    binary = os.path.abspath(sys.argv[1])
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_port = sink.server_address[1]
    at_limit = json.dumps(workflow("big", 500, 1800)).encode()
    assert len(at_limit) < MIB, len(at_limit)
    cases = [
        ("100 events in one delivery (the limit)", json.dumps([workflow(f"t{i}", 3, 200) for i in range(100)]).encode(), 1),
        ("1000 events in one delivery (refused)", json.dumps([{"EventType": "WorkflowTaskComplete", "TaskId": f"t{i}", "Status": "Failed"} for i in range(1000)]).encode(), 1),
        ("one event, 500 nodes (the limit), long errors", at_limit, 1),
        ("one event, 15000 nodes (refused)", json.dumps(many_nodes(15000)).encode(), 1),
        ("one event, 15000 nodes, max_nodes_per_event raised to 20000", json.dumps(many_nodes(15000)).encode(), 1, "[server]\nmax_nodes_per_event = 20000\n"),
        ("the 500-node event, 20 at once (instanceConcurrency)", at_limit, 20),
    ]
    print("| input | body | answers | RSS idle | peak RSS |")
    print("|---|---:|---|---:|---:|")
    for name, body, copies, *extra in cases:
        assert len(body) <= MIB, (name, len(body))
        run(binary, sink_port, name, body, copies, extra[0] if extra else "")
    # What the services answer: 1 GiB from a webhook receiver, and from the VOD API (a `vod`
    # channel's SubmitWorkflowJob and enrichment's GetPlayInfo), 20 callbacks at once.
    huge = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Huge)
    threading.Thread(target=huge.serve_forever, daemon=True).start()
    huge_port = huge.server_address[1]
    failed = json.dumps(workflow("huge", 3, 200)).encode()
    succeeded = json.dumps(dict(workflow("huge-ok", 3, 200), Status="Succeed")).encode()
    run(binary, huge_port, "a webhook receiver answering 1 GiB, 20 at once", failed, 20)
    vod = (f'[vod]\nendpoint = "http://127.0.0.1:{huge_port}"\nenrich = true\n\n'
           '[[channels]]\nname = "rerun"\ntype = "vod"\naction = "SubmitWorkflowJob"\n'
           'params = { WorkflowId = "wf", MediaId = "{{ video_id }}" }\n\n')
    run(binary, sink_port, "the VOD API answering 1 GiB (SubmitWorkflowJob), 20 at once", failed, 20, vod, ("log", "hook", "rerun"))
    run(binary, sink_port, "the VOD API answering 1 GiB (GetPlayInfo), 20 at once", succeeded, 20, vod)


if __name__ == "__main__":
    main()
