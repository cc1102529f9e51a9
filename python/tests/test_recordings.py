"""Recordings from Python: memtrack.open reads what `memtrack import` reads, by the same code;
memtrack.from_snapshot takes the dict torch.cuda.memory._snapshot() returns and interprets it by
the very rules of the pickle importer, event for event."""

import gzip
import pathlib

import pytest

import memtrack
from conftest import load_snapshot, shared_snapshots

SNAPSHOTS = shared_snapshots()


def small_snapshot():
    """A snapshot by hand: one device, a segment with one active block of 512 bytes (its
    requested size 500), a trace that allocates 500 bytes at 0x1000 and one of 300 freed."""
    return {
        "segments": [{"device": 0, "address": 0x1000, "total_size": 2 * 1024 * 1024,
                      "blocks": [{"size": 512, "requested_size": 500, "state": "active_allocated"},
                                 {"size": 2 * 1024 * 1024 - 512, "state": "inactive"}]}],
        "device_traces": [[
            {"action": "alloc", "addr": 0x1000, "size": 500, "stream": 0, "time_us": 10},
            {"action": "alloc", "addr": 0x2000, "size": 300, "stream": 0, "time_us": 11},
            {"action": "free_requested", "addr": 0x2000, "size": 300, "stream": 0,
             "time_us": 12},
            {"action": "free_completed", "addr": 0x2000, "size": 300, "stream": 0,
             "time_us": 13},
        ]],
    }


def test_a_snapshot_dict_becomes_its_events():
    trace = memtrack.from_snapshot(small_snapshot())
    assert trace.format == "pytorch" and trace.path is None
    events = list(trace)
    assert len(trace) == len(events)
    # The operations and the check (the allocator's own events, segments and layouts, between).
    events = [e for e in events if e.kind in ("baseline", "alloc", "free", "check")]
    assert [(e.kind, str(e.device), e.bytes, e.address) for e in events] == [
        ("alloc", "gpu:0", 500, 0x1000),
        ("alloc", "gpu:0", 300, 0x2000),
        ("free", "gpu:0", 300, 0x2000),
        ("check", "gpu:0", None, None),
    ]
    assert events[0].time_ns == 10_000
    assert events[3].check_allocated == 500
    assert events[0].to_dict()["kind"] == "alloc"
    assert "free_requested" in " ".join(trace.notes)


def test_a_snapshot_dict_and_its_pickle_give_the_same_trace(tmp_path):
    import pickle
    path = tmp_path / "small.pickle"
    path.write_bytes(pickle.dumps(small_snapshot(), protocol=4))
    assert list(memtrack.from_snapshot(small_snapshot())) == list(memtrack.open(str(path)))


@pytest.mark.parametrize("snapshot", SNAPSHOTS, ids=[p.name for p in SNAPSHOTS])
def test_every_shared_snapshot_as_a_dict_gives_the_trace_of_its_pickle(snapshot):
    from_pickle = memtrack.open(str(snapshot))
    from_dict = memtrack.from_snapshot(load_snapshot(snapshot))
    assert from_pickle.format == from_dict.format == "pytorch"
    assert len(from_dict) == len(from_pickle) > 0
    count = 0
    for a, b in zip(from_dict, from_pickle):
        assert a == b, f"event {count + 1}: {a.line} != {b.line}"
        count += 1
    assert count == len(from_pickle)


def test_the_shared_snapshots_are_here(traces_dir):
    assert SNAPSHOTS, f"no snapshots in {traces_dir / 'pytorch'}"


def test_the_importers_rules_apply_to_a_dict_and_errors_name_the_place():
    broken = small_snapshot()
    broken["device_traces"][0][1]["size"] = -3
    with pytest.raises(memtrack.ParseError) as error:
        memtrack.from_snapshot(broken)
    message = str(error.value)
    assert "device_traces[0][1].size" in message and "non-negative" in message
    assert "got the integer -3" in message  # the value as the pickle reader would describe it
    assert "byte 0" not in message  # a dict has no byte offsets
    # An allocation neither active at the end nor freed: the importer's consistency rule.
    inconsistent = small_snapshot()
    inconsistent["device_traces"][0].pop()
    with pytest.raises(memtrack.ParseError, match="inconsistent snapshot"):
        memtrack.from_snapshot(inconsistent)
    with pytest.raises(memtrack.ParseError, match="expected the key 'segments'"):
        memtrack.from_snapshot({})


def test_a_dict_that_is_not_plain_data_is_refused():
    odd = small_snapshot()
    odd["segments"][0]["blocks"][0]["frames"] = [object()]
    with pytest.raises(TypeError, match="plain data"):
        memtrack.from_snapshot(odd)
    cyclic = small_snapshot()
    cyclic["device_traces"].append(cyclic["device_traces"])
    with pytest.raises(ValueError, match="contains itself"):
        memtrack.from_snapshot(cyclic)
    # Shared (not cyclic) parts are fine, as in a pickle's memo.
    shared = small_snapshot()
    shared["again"] = shared["segments"]
    assert list(memtrack.from_snapshot(shared)) == list(memtrack.from_snapshot(small_snapshot()))


def test_integers_beyond_64_bits_are_refused_by_the_importer_not_wrapped():
    wide = small_snapshot()
    wide["device_traces"][0][1]["size"] = 2**64
    with pytest.raises(memtrack.ParseError, match="size.*an integer of 2\\^64 or more"):
        memtrack.from_snapshot(wide)
    wide["device_traces"][0][1]["size"] = -(2**64)
    with pytest.raises(memtrack.ParseError, match="size.*an integer of -2\\^64 or less"):
        memtrack.from_snapshot(wide)


def test_a_canonical_trace_opens_and_iterates_as_written(tmp_path):
    path = tmp_path / "two.trace"
    path.write_text("memtrack-trace 1\nsource by hand\ncpu_memory_limit 1000\n"
                    "gpu 0 total=4096\nevents\nalloc gpu:0 100 addr=0x10\n"
                    "free gpu:0 addr=0x10\nend 2\n")
    trace = memtrack.open(str(path))
    assert (trace.format, trace.source, len(trace)) == ("canonical", "by hand", 2)
    assert [g.total_bytes for g in trace.gpus] == [4096]
    events = list(trace)
    assert events[0].line == "alloc gpu:0 100 addr=0x10"
    assert events[1].kind == "free" and events[1].bytes is None
    assert list(trace) == events  # each iteration reads the file again


def test_a_truncated_trace_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "short.trace"
    path.write_text("memtrack-trace 1\nevents\nalloc cpu 1\nend 5\n")
    with pytest.raises(memtrack.ParseError, match="short.trace"):
        list(memtrack.open(str(path)))
    # a file that is not there is an I/O error, also an OSError as Python's own are
    with pytest.raises(memtrack.IoError, match="missing.pickle: cannot open: no such file"):
        memtrack.open(str(tmp_path / "missing.pickle"))
    with pytest.raises(OSError):
        memtrack.open(str(tmp_path))


def test_a_trace_in_memory_saves_as_a_canonical_trace(tmp_path):
    trace = memtrack.from_snapshot(small_snapshot())
    trace.save(str(tmp_path / "saved.trace.gz"))
    with gzip.open(tmp_path / "saved.trace.gz", "rt") as file:
        assert file.readline() == "memtrack-trace 1\n"
    assert list(memtrack.open(str(tmp_path / "saved.trace.gz"))) == list(trace)


def test_kineto_recordings_open_like_the_import_command(traces_dir):
    trace = memtrack.open(str(traces_dir / "kineto" / "hta_df_index_resolver.json.gz"))
    assert trace.format == "kineto" and len(trace) > 0
    kinds = {event.kind for event in trace}
    assert "alloc" in kinds and "check" in kinds
