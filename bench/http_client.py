#!/usr/bin/env python3
# bench/http_client.py: the Python reference for http_client: `conns` threads each send
# requests/conns GETs with urllib.request.urlopen (which opens a connection per request and sends
# Connection: close) to the same server process as the weft side (bench_http_client --system
# serve). Speaks the harness protocol of bench/harness.hpp.
import argparse
import json
import os
import resource
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

BUILD_DIR = Path(os.environ.get("WEFT_BENCH_BUILD_DIR",
                                Path(__file__).resolve().parent.parent / "build" / "bench"))


def worker(url, count, results, index):
    ok = 0
    for _ in range(count):
        with urllib.request.urlopen(url) as response:
            if response.status == 200 and response.read() == b"Hello, world!":
                ok += 1
    results[index] = ok


def run(url, requests, conns):
    results = [0] * conns
    threads = [threading.Thread(target=worker,
                                args=(url, requests // conns + (1 if i < requests % conns else 0),
                                      results, i))
               for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == requests, f"{sum(results)} of {requests} answered"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--system", default="python")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--conns", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    server = subprocess.Popen([str(BUILD_DIR / "bench_http_client"), "--system", "serve"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    port = int(server.stdout.readline())
    url = f"http://127.0.0.1:{port}/hello"
    try:
        for i in range(args.warmup + args.runs):
            start = time.perf_counter()
            run(url, args.requests, args.conns)
            ms = (time.perf_counter() - start) * 1000
            if i >= args.warmup:
                print(json.dumps({"ms": round(ms, 3)}), flush=True)
    finally:
        server.stdin.close()
        server.wait()
    print(json.dumps({"peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "extra": {}}))


if __name__ == "__main__":
    main()
