"""Instrumentation overhead of ``loopdoc trace``: a traced fit against an untraced fit of the same learner.

    .venv/bin/python benchmarks/trace_overhead.py [--repeats 7] [--learner examples/custom_callbacks.py]

Both fits run in this one process, interleaved, on the same learner, over every batch
(the trace's cap is set above the number of batches). Prints the median and spread of
each, their ratio, and the overhead per callback call (µs).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import loopdoc  # noqa: E402
from loopdoc.adapters.fastai.recorder import run_trace  # noqa: E402
from loopdoc.load import load  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--learner", default="examples/custom_callbacks.py")
    args = parser.parse_args()
    learn = load(args.learner).learner
    static = loopdoc.loop(learn, call="fit(1)")
    n_batches = len(learn.dls.train) + len(learn.dls.valid)
    plain, traced, calls = [], [], 0
    with contextlib.redirect_stdout(io.StringIO()):
        learn.fit(1)  # warm-up: optimizer, caches
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            learn.fit(1)
            plain.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            trace = run_trace(learn, static, "fit(1)", {}, batches=n_batches)
            traced.append(time.perf_counter() - t0)
            calls = sum(h.calls for e in trace.events for h in e.handlers)
    p, t = statistics.median(plain), statistics.median(traced)
    print(f"learner: {args.learner}  ({n_batches} batches per fit, {calls} callback calls per traced fit, {args.repeats} repeats)")
    print(f"untraced fit(1): median {p * 1000:8.1f} ms  (min {min(plain) * 1000:.1f}, max {max(plain) * 1000:.1f})")
    print(f"traced   fit(1): median {t * 1000:8.1f} ms  (min {min(traced) * 1000:.1f}, max {max(traced) * 1000:.1f})")
    print(f"ratio traced/untraced: {t / p:.2f}x;  overhead per callback call: {(t - p) / calls * 1e6:.1f} µs")


if __name__ == "__main__":
    main()
