"""SharedMemoryTracker from Python threads: check and record are one step, so the threads never
take more than the budget, and every byte is accounted for when they finish."""

import threading

import memtrack

THREADS = 8
ROUNDS = 2000
CHUNK = 1000


def test_threads_never_overcommit_and_the_accounts_balance():
    # Room for exactly 100 chunks on the GPU and 50 on the CPU.
    config = memtrack.GpuConfig([memtrack.GpuSpec(0, 100 * CHUNK, memory_fraction="1")],
                                cpu_memory_limit=50 * CHUNK)
    tracker = memtrack.SharedMemoryTracker(config)
    start = threading.Barrier(THREADS)
    held_counts = []
    errors = []

    def worker():
        held = []
        refused = 0
        start.wait()
        try:
            for i in range(ROUNDS):
                try:
                    held.append(tracker.allocate("auto", CHUNK))
                except memtrack.OutOfMemory:
                    refused += 1
                if i % 3 == 2 and held:
                    tracker.deallocate(held.pop(), CHUNK)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        held_counts.append((held, refused))

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    still_held = [device for held, _ in held_counts for device in held]
    on_gpu = sum(1 for d in still_held if d == "gpu:0")
    on_cpu = sum(1 for d in still_held if d == "cpu")
    assert on_gpu + on_cpu == len(still_held)
    assert tracker.allocated("gpu:0") == on_gpu * CHUNK <= 100 * CHUNK
    assert tracker.allocated("cpu") == on_cpu * CHUNK <= 50 * CHUNK
    assert tracker.peak("gpu:0") <= 100 * CHUNK and tracker.peak("cpu") <= 50 * CHUNK
    # The threads ask for far more than fits (8 x 2000 chunks, a third freed): some refused.
    assert sum(refused for _, refused in held_counts) > 0
    for device in still_held:
        tracker.deallocate(device, CHUNK)
    assert tracker.allocated("auto") == 0


def test_threads_hammering_the_tracker_never_deadlock_with_the_gil():
    # Each call releases the GIL before it takes the tracker's lock and takes the GIL back after
    # releasing it: a thread holding one never waits for the other while the main thread runs.
    tracker = memtrack.SharedMemoryTracker(memtrack.GpuConfig([], cpu_memory_limit=1 << 40))
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            tracker.allocate("cpu", 1)
            tracker.deallocate("cpu", 1)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    counted = sum(1 for _ in range(200000))
    stop.set()
    for thread in threads:
        thread.join()
    assert counted == 200000
    assert tracker.allocated("cpu") == 0
