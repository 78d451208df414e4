#!/usr/bin/env python3
# bench/ping_pong.py: the Python reference for ping_pong: `pairs` pairs of asyncio tasks bounce a
# counter `msgs` times through two asyncio.Queue(maxsize=1). Speaks the harness protocol of
# bench/harness.hpp: one {"ms": ...} line per timed run, then {"peak_rss_kb": ...}.
import argparse
import asyncio
import json
import resource
import time


async def pinger(out_q, in_q, msgs):
    for i in range(msgs):
        await out_q.put(i)
        await in_q.get()


async def ponger(in_q, out_q, msgs):
    for _ in range(msgs):
        v = await in_q.get()
        await out_q.put(v + 1)


async def run(pairs, msgs):
    players = []
    for _ in range(pairs):
        a, b = asyncio.Queue(maxsize=1), asyncio.Queue(maxsize=1)
        players += [pinger(a, b, msgs), ponger(a, b, msgs)]
    await asyncio.gather(*players)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--system", default="python")
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--msgs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args()
    for i in range(args.warmup + args.runs):
        start = time.perf_counter()
        asyncio.run(run(args.pairs, args.msgs))
        ms = (time.perf_counter() - start) * 1000
        if i >= args.warmup:
            print(json.dumps({"ms": round(ms, 3)}), flush=True)
    print(json.dumps({"peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


if __name__ == "__main__":
    main()
