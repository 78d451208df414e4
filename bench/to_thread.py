#!/usr/bin/env python3
# bench/to_thread.py: the Python reference for to_thread: one asyncio task awaits `calls` calls
# of an empty function through asyncio.to_thread, one after another. Speaks the harness protocol
# of bench/harness.hpp; p50 and p99 of the round trip (microseconds) go into the extra fields.
import argparse
import asyncio
import json
import resource
import time


def empty_function(x):
    return x + 1


async def run(calls, latencies):
    total = 0
    for i in range(calls):
        start = time.perf_counter()
        total += await asyncio.to_thread(empty_function, i & 1)
        latencies.append((time.perf_counter() - start) * 1e6)
    assert total == calls + calls // 2


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--system", default="python")
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    timed = []
    for i in range(args.warmup + args.runs):
        latencies = []
        start = time.perf_counter()
        asyncio.run(run(args.calls, latencies))
        ms = (time.perf_counter() - start) * 1000
        if i >= args.warmup:
            timed += latencies
            print(json.dumps({"ms": round(ms, 3)}), flush=True)
    timed.sort()
    extra = {"p50_us": round(timed[len(timed) // 2], 2),
             "p99_us": round(timed[int(0.99 * (len(timed) - 1))], 2)}
    print(json.dumps({"peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "extra": extra}))


if __name__ == "__main__":
    main()
