# bench/process_pool.py: the Python reference of the process_pool benchmark:
# concurrent.futures.ProcessPoolExecutor with `threads` workers (WEFT_BENCH_THREADS), `calls`
# submits of a function taking and returning 64 bytes, all submitted at once and then awaited.
# Speaks the harness protocol of bench/harness.hpp on stdout. Extra fields as the weft side:
# p50_us/p99_us of one call with nothing else in flight, replace_ms after a worker dies (Python's
# pool breaks as a whole on a crash: BrokenProcessPool; a new pool must be made, which is timed).
import argparse
import concurrent.futures
import json
import os
import resource
import statistics
import time


def echo64(payload):
    return payload[::-1]


def die_now(_):
    os._exit(7)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--system", default="python")
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=0)
    args = parser.parse_args()
    workers = int(os.environ.get("WEFT_BENCH_THREADS", "2") or "2")
    payload = b"p" * 64
    extra = {}
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        pool.submit(echo64, payload).result()  # start the workers
        for i in range(args.warmup + args.runs):
            start = time.perf_counter()
            futures = [pool.submit(echo64, payload) for _ in range(args.calls)]
            ok = sum(1 for f in futures if f.result() == payload[::-1])
            elapsed = (time.perf_counter() - start) * 1000.0
            assert ok == args.calls
            if i >= args.warmup:
                print(json.dumps({"ms": round(elapsed, 4)}), flush=True)
        single = []
        for _ in range(2000):
            start = time.perf_counter()
            pool.submit(echo64, payload).result()
            single.append((time.perf_counter() - start) * 1e6)
        single.sort()
        extra["p50_us"] = round(single[len(single) // 2], 2)
        extra["p99_us"] = round(single[len(single) * 99 // 100], 2)
    replace = []
    for _ in range(5):
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=1)
        pool.submit(echo64, payload).result()
        start = time.perf_counter()
        try:
            pool.submit(die_now, 0).result()
        except concurrent.futures.process.BrokenProcessPool:
            pass
        pool.shutdown(wait=True)
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=1)
        pool.submit(echo64, payload).result()
        replace.append((time.perf_counter() - start) * 1000.0)
        pool.shutdown(wait=True)
    extra["replace_ms"] = round(statistics.median(replace), 2)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_kb": peak, "extra": extra}), flush=True)


if __name__ == "__main__":
    main()
