# bench/timers.py: the Python asyncio reference of the timers benchmark (n tasks each awaiting
# asyncio.sleep at once, via gather). Speaks harness.hpp's line protocol on stdout.
import argparse
import asyncio
import json
import resource
import time


async def sleeper(seconds):
    await asyncio.sleep(seconds)


async def one_run(n, seconds):
    await asyncio.gather(*(sleeper(seconds) for _ in range(n)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--system", default="python")
    parser.add_argument("--n", type=int, default=100000)
    parser.add_argument("--ms", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=0)
    args = parser.parse_args()
    for i in range(args.warmup + args.runs):
        start = time.perf_counter()
        asyncio.run(one_run(args.n, args.ms / 1000.0))
        elapsed = (time.perf_counter() - start) * 1000.0
        if i >= args.warmup:
            print(json.dumps({"ms": round(elapsed, 4)}), flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_kb": peak, "extra": {}}), flush=True)


if __name__ == "__main__":
    main()
