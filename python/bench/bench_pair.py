"""An allocate + deallocate pair on memtrack.MemoryTracker from Python, against a pair of calls
to an empty function of the same module (memtrack._memtrack._noop, the same two arguments): the
cost the binding adds over Python's own call into an extension. Target: at most 2x.

    PYTHONPATH=build/ci/python python3 python/bench/bench_pair.py [--check]

Both are timed interleaved in one run (best of 7 rounds each), so load on the machine affects
both alike. --check exits 1 when the ratio is above 2.
"""

import sys
import timeit

import memtrack
from memtrack import _memtrack

NUMBER = 200_000
ROUNDS = 7


def main() -> int:
    config = memtrack.GpuConfig([memtrack.GpuSpec(0, 1 << 40, memory_fraction="1")])
    tracker = memtrack.MemoryTracker(config)
    gpu = memtrack.DevicePlacement("gpu:0")
    names = {"allocate": tracker.allocate, "deallocate": tracker.deallocate,
             "noop": _memtrack._noop, "gpu": gpu, "text": "gpu:0", "n": 1 << 20}
    cases = {
        "empty pair": "noop(gpu, n); noop(gpu, n)",
        "allocate+deallocate": "allocate(gpu, n); deallocate(gpu, n)",
        "allocate+deallocate ('gpu:0')": "allocate(text, n); deallocate(text, n)",
    }
    best = {name: float("inf") for name in cases}
    for _ in range(ROUNDS):
        for name, statement in cases.items():
            seconds = timeit.timeit(statement, globals=names, number=NUMBER)
            best[name] = min(best[name], seconds / NUMBER)
    base = best["empty pair"]
    for name, seconds in best.items():
        print(f"{name:<32} {seconds * 1e9:8.1f} ns per pair  {seconds / base:5.2f}x")
    ratio = best["allocate+deallocate"] / base
    print(f"ratio: {ratio:.2f}x an empty pair (target: at most 2x)")
    assert tracker.allocated("gpu:0") == 0
    if "--check" in sys.argv[1:] and ratio > 2.0:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
