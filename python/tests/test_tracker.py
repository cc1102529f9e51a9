"""The accounting contract from Python, against the same rules as the C++ tests
(docs/semantics.md): exact limits, 2^64 - 1, one byte over, `auto` falling back to the CPU,
failed operations changing nothing, and byte counts only as Python ints."""

from fractions import Fraction

import pytest

import memtrack
from memtrack import GiB, MiB

MAX = 2**64 - 1  # 18446744073709551615


def rtx5090_config(**kwargs):
    # 33680457728 bytes, 24 GiB usable: limit = min(floor(33680457728 * 9/10), 24 GiB) = 24 GiB.
    return memtrack.GpuConfig([memtrack.GpuSpec(0, 33680457728, usable_bytes=24 * GiB)], **kwargs)


def state(tracker):
    """Everything observable, to show a failed operation changed nothing."""
    devices = ["cpu"] + [f"gpu:{i}" for i in tracker.gpu_ids]
    return (tracker.summary(),
            {d: (tracker.allocated(d), tracker.peak(d), tracker.available(d),
                 tracker.allocation_count(d)) for d in devices})


def test_limits_are_exact_and_the_cpu_default_is_16_gib():
    tracker = memtrack.MemoryTracker(rtx5090_config())
    assert tracker.limit("gpu:0") == 25769803776
    assert tracker.limit("cpu") == 17179869184
    assert tracker.limit("auto") == 25769803776 + 17179869184
    # Without the cap: floor(33680457728 * 9 / 10) = 30312411955 (the fraction is exact).
    uncapped = memtrack.MemoryTracker(memtrack.GpuConfig([memtrack.GpuSpec(0, 33680457728)]))
    assert uncapped.limit("gpu:0") == 30312411955
    assert memtrack.GpuConfig([memtrack.GpuSpec(3, 1000)], memory_fraction="1/3").gpu_limit(3) \
        == 333


def test_exact_fit_succeeds_and_one_byte_over_is_refused_with_its_numbers():
    tracker = memtrack.MemoryTracker(rtx5090_config())
    assert tracker.allocate("gpu:0", 24 * GiB - 1) == "gpu:0"
    before = state(tracker)
    with pytest.raises(memtrack.OutOfMemory) as refused:
        tracker.allocate("gpu:0", 2)
    error = refused.value
    assert (error.device, error.requested, error.available, error.limit) == \
        ("gpu:0", 2, 1, 25769803776)
    assert isinstance(error, memtrack.Error)
    assert "2" in str(error) and "25769803776" in str(error)
    assert state(tracker) == before
    assert tracker.allocate("gpu:0", 1) == "gpu:0"
    assert tracker.available("gpu:0") == 0


def test_a_budget_of_2_64_minus_1_takes_exactly_that_many_bytes():
    config = memtrack.GpuConfig([], cpu_memory_limit=MAX)
    tracker = memtrack.MemoryTracker(config)
    assert tracker.limit("cpu") == MAX
    assert tracker.allocate("cpu", MAX) == "cpu"
    assert tracker.allocated("cpu") == MAX and tracker.peak("cpu") == MAX
    with pytest.raises(memtrack.OutOfMemory):
        tracker.allocate("cpu", 1)
    tracker.deallocate("cpu", MAX)
    assert tracker.allocated("cpu") == 0 and tracker.peak("cpu") == MAX


def test_limits_that_sum_past_2_64_minus_1_are_an_invalid_config():
    config = memtrack.GpuConfig([memtrack.GpuSpec(0, MAX, memory_fraction="1")],
                                cpu_memory_limit=1)
    with pytest.raises(memtrack.InvalidConfig):
        memtrack.MemoryTracker(config)
    with pytest.raises(memtrack.InvalidConfig):
        memtrack.GpuConfig([memtrack.GpuSpec(0, 0)]).validate()


def test_auto_takes_the_first_gpu_with_room_then_falls_back_to_the_cpu():
    config = memtrack.GpuConfig([memtrack.GpuSpec(0, 1000, memory_fraction="1"),
                                 memtrack.GpuSpec(1, 1000, memory_fraction="1")],
                                cpu_memory_limit=500)
    tracker = memtrack.MemoryTracker(config)
    assert tracker.allocate("auto", 900) == "gpu:0"
    assert tracker.allocate("auto", 900) == "gpu:1"
    where = tracker.allocate("auto", 300)
    assert where == "cpu" and where.is_cpu and where.kind == "cpu"
    before = state(tracker)
    with pytest.raises(memtrack.OutOfMemory) as refused:
        tracker.allocate("auto", 201)  # 100 left on each GPU, 200 on the CPU
    assert refused.value.device == "auto" and refused.value.available == 200
    assert refused.value.limit == 0
    assert state(tracker) == before


def test_failed_frees_and_unknown_devices_change_nothing():
    tracker = memtrack.MemoryTracker(rtx5090_config())
    tracker.allocate("gpu:0", 10 * MiB)
    before = state(tracker)
    with pytest.raises(memtrack.InvalidDeallocation) as over:
        tracker.deallocate("gpu:0", 10 * MiB + 1)
    assert (over.value.requested, over.value.allocated) == (10 * MiB + 1, 10 * MiB)
    with pytest.raises(memtrack.AmbiguousDevice):
        tracker.deallocate("auto", 1)
    with pytest.raises(memtrack.UnknownDevice) as unknown:
        tracker.allocate("gpu:7", 1)
    assert unknown.value.device == "gpu:7"
    with pytest.raises(memtrack.UnknownDevice):
        tracker.gpu_info(7)
    assert state(tracker) == before


def test_peaks_reset_to_what_is_allocated():
    tracker = memtrack.MemoryTracker(rtx5090_config())
    tracker.allocate("gpu:0", 3000)
    tracker.deallocate("gpu:0", 1000)
    assert tracker.gpu_info(0) == {"allocated": 2000, "peak": 3000, "allocation_count": 0}
    tracker.reset_peak("gpu:0")
    assert tracker.peak("gpu:0") == 2000
    tracker.allocate("cpu", 5)
    tracker.deallocate("cpu", 5)
    tracker.reset_peak()
    assert tracker.peak("cpu") == 0 and tracker.summary()["total_peak"] == 2000


@pytest.mark.parametrize("bad", [1.0, 2.5, "5", None, True, b"1"])
def test_a_byte_count_that_is_not_an_int_is_a_type_error(bad):
    tracker = memtrack.MemoryTracker(rtx5090_config())
    with pytest.raises(TypeError):
        tracker.allocate("gpu:0", bad)
    assert tracker.allocated("gpu:0") == 0


def test_negative_sizes_are_value_errors_and_sizes_past_2_64_minus_1_overflow():
    tracker = memtrack.MemoryTracker(rtx5090_config())
    with pytest.raises(ValueError):
        tracker.allocate("cpu", -1)
    with pytest.raises(OverflowError):
        tracker.allocate("cpu", 2**64)
    with pytest.raises(OverflowError):
        memtrack.GpuSpec(0, 2**64)
    with pytest.raises(ValueError):
        memtrack.GpuConfig([], cpu_memory_limit=-5)
    assert tracker.can_allocate("cpu", MAX) is False
    assert tracker.summary()["cpu_allocated"] == 0


def test_fractions_are_exact_and_floats_are_refused():
    assert rtx5090_config(memory_fraction="90%").memory_fraction == Fraction(9, 10)
    assert rtx5090_config(memory_fraction=Fraction(1, 3)).memory_fraction == Fraction(1, 3)
    with pytest.raises(TypeError):
        rtx5090_config(memory_fraction=0.9)
    with pytest.raises(memtrack.InvalidConfig):
        rtx5090_config(memory_fraction="1.5")


def test_placements_parse_as_the_library_writes_them():
    assert memtrack.DevicePlacement("gpu:12").gpu_id == 12
    assert str(memtrack.DevicePlacement("auto")) == "auto"
    assert memtrack.DevicePlacement("cpu") < "gpu:0" < memtrack.DevicePlacement("auto")
    for bad in ["gpu:01", "gpu:-1", "GPU:0", "gpu:4294967296", ""]:
        with pytest.raises(memtrack.ParseError):
            memtrack.DevicePlacement(bad)
    assert memtrack.parse_size("1.5GiB") == 1610612736
    assert memtrack.parse_size("32GB") == 32 * 10**9


def test_the_shared_tracker_keeps_the_same_contract():
    shared = memtrack.SharedMemoryTracker(rtx5090_config())
    assert shared.allocate("auto", 24 * GiB) == "gpu:0"
    assert shared.allocate("auto", 1) == "cpu"
    with pytest.raises(memtrack.OutOfMemory):
        shared.allocate("gpu:0", 1)
    copy = shared.snapshot()
    assert isinstance(copy, memtrack.MemoryTracker) and copy.allocated("gpu:0") == 24 * GiB
