#!/usr/bin/env python3
"""The table gpu-check.sh prints last: what memtrack recorded and replayed, beside what the device
and the framework reported for the same runs. Reads the files gpu-check.sh left in OUT.

    gpu_compare.py OUT
"""
import json
import os
import re
import sys


def read_trace(path):
    """The baseline, allocation count and device lines of an uncompressed memtrack trace."""
    info = {"baseline": {}, "allocs": {}, "devices": []}
    with open(path) as file:
        for line in file:
            line = line.split("#", 1)[0].strip()
            if line.startswith("device "):
                info["devices"].append(line)
            elif line.startswith("baseline "):
                _, device, size = line.split()[:3]
                info["baseline"][device] = info["baseline"].get(device, 0) + int(size)
            elif line.startswith("alloc "):
                device = line.split()[1]
                info["allocs"][device] = info["allocs"].get(device, 0) + 1
    return info


def read_replay(path):
    """{device: (peak, final)} from `memtrack replay` output, and its verdict line."""
    devices, verdict = {}, ""
    with open(path) as file:
        for line in file:
            match = re.match(r"^(gpu:\d+|cpu)\s+(\d+)\s+(\d+)\s+[\d.]+\s+(\d+)\s*$", line)
            if match:
                devices[match.group(1)] = (int(match.group(3)), int(match.group(4)))
            if line.startswith("verdict:"):
                verdict = line.strip()
    return devices, verdict


def load_json(path):
    with open(path) as file:
        return json.load(file)


class Table:
    def __init__(self):
        self.rows = []

    def add(self, check, memtrack_value, reference, note=""):
        if memtrack_value is None or reference is None:
            verdict = "missing"
        elif memtrack_value == reference:
            verdict = "agree"
        else:
            difference = memtrack_value - reference
            verdict = f"differ by {difference:+,} B"
        self.rows.append((check, "-" if memtrack_value is None else f"{memtrack_value:,}",
                          "-" if reference is None else f"{reference:,}", verdict, note))

    def print(self, out):
        headers = ("check", "memtrack", "reference", "verdict", "reference is")
        widths = [max(len(str(r[i])) for r in self.rows + [headers]) for i in range(5)]
        for row in [headers] + self.rows:
            cells = [str(c).rjust(widths[i]) if i in (1, 2) else str(c).ljust(widths[i])
                     for i, c in enumerate(row)]
            print("  ".join(cells).rstrip(), file=out)


def guarded(table, name, function):
    try:
        function()
    except (OSError, KeyError, ValueError, IndexError) as error:
        table.add(f"{name}: could not compare ({type(error).__name__}: {error})", None, None)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "gpu-check-out"
    path = lambda name: os.path.join(out, name)  # noqa: E731
    table = Table()

    def cuda():
        trace = read_trace(path("cuda.trace"))
        replay, _ = read_replay(path("cuda-replay.txt"))
        truth = load_json(path("cuda-workload.json"))
        base = trace["baseline"].get("gpu:0", 0)
        peak, final = replay["gpu:0"]
        table.add("cuda: peak held above the baseline", peak - base, truth["peak_held_bytes"],
                  "what the program asked for (cudaMalloc, cudaMallocAsync, cuMemCreate); the "
                  "trace also holds the cudaMallocAsync pool's reserve (tag=pool-reserve)")
        table.add("cuda: left allocated at the end", final - base, truth["steps"][-1]["held_bytes"],
                  "the program's own count")
        start = truth["steps"][0]
        table.add("cuda: baseline (in use when the context began)", base,
                  start["total"] - start["free"], "cudaMemGetInfo total - free after cudaFree(0)")
        at_peak = max(truth["steps"], key=lambda s: s["held_bytes"])
        table.add("cuda: device memory taken at the peak", peak - base,
                  start["free"] - at_peak["free"],
                  "cudaMemGetInfo free drop (rounding, pool reserve)")
        table.add("cuda: device allocations recorded", trace["allocs"].get("gpu:0", 0),
                  truth["allocations"], "the program's own count")
        cpu = replay.get("cpu", (0, 0))[0]
        table.add("cuda: pinned host memory at the peak", cpu,
                  max(s["pinned_bytes"] for s in truth["steps"]), "cudaHostAlloc")

    def torch():
        trace = read_trace(path("torch.trace"))
        replay, _ = read_replay(path("torch-replay.txt"))
        truth = load_json(path("torch-workload.json"))
        base = trace["baseline"].get("gpu:0", 0)
        peak, final = replay["gpu:0"]
        table.add("torch: peak above the baseline (CUDA segments)", peak - base,
                  truth["max_memory_reserved"], "torch.cuda.max_memory_reserved()")
        table.add("torch: left at the end (CUDA segments)", final - base,
                  truth["steps"][-1]["reserved"], "torch.cuda.memory_reserved()")
        start = truth["steps"][0]
        table.add("torch: baseline", base, start["total"] - start["free"],
                  "torch.cuda.mem_get_info() at start")
        snapshot, _ = read_replay(path("torch-snapshot-replay.txt"))
        snap_peak, snap_final = snapshot["gpu:0"]
        table.add("torch snapshot import: peak allocated", snap_peak,
                  truth["max_memory_allocated"],
                  "torch.cuda.max_memory_allocated() (the snapshot keeps requested sizes)")
        table.add("torch snapshot import: allocated at the end", snap_final,
                  truth["steps"][-1]["allocated"], "torch.cuda.memory_allocated()")

    guarded(table, "cuda workload", cuda)
    guarded(table, "torch workload", torch)
    with open(path("summary.txt"), "w") as file:
        table.print(file)
    print()
    print("memtrack gpu-check: what memtrack recorded and replayed, beside what the device and "
          "PyTorch reported")
    table.print(sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
