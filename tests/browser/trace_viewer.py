#!/usr/bin/env python3
# tests/browser/trace_viewer.py: opens a real weft trace in a real viewer, offline. Runs the trace
# example (examples/trace.cpp) to write a trace file, serves speedscope (the npm package: a static
# web app that reads the Chrome trace event format) and the file from 127.0.0.1, loads
# index.html#profileURL=... in Debian's headless Chromium, and checks in the page that speedscope
# imported the file: one profile per thread, with a track for every worker by name, and no import
# error. Saves a screenshot of the page (docs/images/trace-speedscope.png comes from here:
# `tests/browser/trace_viewer.py --example build/release/examples/trace --screenshot
# docs/images/trace-speedscope.png`).
#
# speedscope is installed at test time into --cache with npm (pinned version); nothing is
# vendored. Without chromium or npm the test is skipped (exit status 77, CTest's SKIP_RETURN_CODE)
# with a line that says which is missing; .ci/deps installs both.
import argparse
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

SPEEDSCOPE = "speedscope@1.25.0"
SKIP = 77


def fail(message):
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def find_browser():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def install_speedscope(cache):
    release = cache / "node_modules" / "speedscope" / "dist" / "release"
    if (release / "index.html").exists():
        return release
    cache.mkdir(parents=True, exist_ok=True)
    print(f"installing {SPEEDSCOPE} into {cache}", file=sys.stderr)
    result = subprocess.run(["npm", "install", "--prefix", str(cache), "--no-audit", "--no-fund",
                             "--no-save", "--loglevel=error", SPEEDSCOPE],
                            capture_output=True, text=True, timeout=180)
    if result.returncode != 0 or not (release / "index.html").exists():
        fail(f"npm could not install {SPEEDSCOPE}: {result.stderr.strip()[-2000:]}")
    return release


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--example", required=True, help="the trace example program")
    parser.add_argument("--cache", required=True, help="where npm installs speedscope")
    parser.add_argument("--screenshot", help="where to save the PNG (default: in a temp dir)")
    args = parser.parse_args()

    browser = find_browser()
    if browser is None or shutil.which("npm") is None:
        missing = " and ".join(n for n, ok in (("chromium", browser), ("npm", shutil.which("npm")))
                               if not ok)
        print(f"SKIPPED: the browser test needs {missing} (bash .ci/deps installs them)")
        return SKIP
    release = install_speedscope(Path(args.cache).resolve())

    with tempfile.TemporaryDirectory(prefix="weft-browser-") as tmp:
        root = Path(tmp) / "site"
        shutil.copytree(release, root)
        trace = root / "trace.json"
        env = {k: v for k, v in os.environ.items() if k != "WEFT_TRACE"}
        run = subprocess.run([args.example, str(trace)], capture_output=True, text=True, env=env,
                             timeout=60)
        if run.returncode != 0:
            fail(f"the trace example failed ({run.returncode}): {run.stderr}")
        doc = json.loads(trace.read_text())
        names = {e["tid"]: e["args"]["name"] for e in doc["traceEvents"]
                 if e.get("ph") == "M" and e.get("name") == "thread_name"}
        workers = sorted(n for n in names.values() if re.fullmatch(r"weft-w\d+", n))
        if len(workers) != 2:
            fail(f"the trace names {workers} as workers, expected weft-w0 and weft-w1")
        # speedscope makes one profile per thread that has slices (B, E or X events).
        tracks = {e["tid"] for e in doc["traceEvents"] if e.get("ph") in ("B", "E", "X")}

        handler = functools.partial(QuietHandler, directory=str(root))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            base = f"http://127.0.0.1:{server.server_address[1]}"
            shot = Path(args.screenshot).resolve() if args.screenshot else Path(tmp) / "shot.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            if shot.exists():
                shot.unlink()
            command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                       "--hide-scrollbars", f"--user-data-dir={tmp}/profile",
                       "--virtual-time-budget=3000", "--window-size=1400,800",
                       f"--screenshot={shot}", "--dump-dom",
                       f"{base}/index.html#profileURL={base}/trace.json"]
            page = subprocess.run(command, capture_output=True, text=True, timeout=90)
        finally:
            server.shutdown()
            server.server_close()
        dom = page.stdout
        if page.returncode != 0 or "<html" not in dom:
            fail(f"chromium failed ({page.returncode}): {page.stderr[-2000:]}")
        if "Something went wrong" in dom or "Unrecognized format" in dom:
            fail("speedscope could not import the trace")
        if "trace.json - speedscope" not in dom:
            fail("speedscope did not load the trace (the page title does not name it)")
        for worker in workers:
            if f"{worker} (tid" not in dom:
                fail(f"speedscope shows no track for {worker}")
        count = re.search(r"\(1/(\d+)\)", dom)
        if count is None or int(count.group(1)) != len(tracks):
            fail(f"speedscope shows {count.group(0) if count else 'no'} profiles, expected "
                 f"{len(tracks)} (one per thread with slices)")
        if not shot.exists() or shot.stat().st_size < 4096 or \
                shot.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
            fail(f"no screenshot at {shot}")
        print(f"speedscope shows {len(tracks)} tracks ({', '.join(workers)} among them); "
              f"screenshot: {shot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
