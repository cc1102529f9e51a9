"""fit, replay, report and profiles from Python: the very commands of the memtrack binary, run
in-process with --json, so a result's fields are the binary's own (checked here against the
binary run as a separate process); and `python3 -m memtrack` is that binary."""

import json
import os
import subprocess
import sys

import pytest

import memtrack
from conftest import load_snapshot

SILMONT = "pytorch/silmont_mem_snapshot.pickle"


def binary_json(memtrack_bin, *args):
    done = subprocess.run([memtrack_bin, *args, "--json"], capture_output=True, text=True,
                          check=False)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_the_acceptance_line_fits_a_snapshot_on_every_profile(traces_dir, memtrack_bin):
    path = str(traces_dir / SILMONT)
    result = memtrack.fit(path, profile="all")
    code, expected = binary_json(memtrack_bin, "fit", path, "--profile", "all")
    assert result.to_dict() == expected
    assert result.exit_code == code
    assert len(result.profiles) == len(memtrack.profiles()) - 1  # every GPU profile
    assert result.profiles[0].profile == expected["profiles"][0]["profile"]
    assert result.smallest_fitting == expected["smallest_fitting"]
    assert "smallest that fits" in str(result)
    done = subprocess.run([sys.executable, "-c",
                           f"import memtrack; print(memtrack.fit({path!r}, profile='all'))"],
                          capture_output=True, text=True, check=True)
    assert "smallest that fits" in done.stdout


def test_fit_on_one_profile_has_the_per_device_fields(traces_dir, memtrack_bin):
    path = str(traces_dir / SILMONT)
    result = memtrack.fit(path, profile="rtx5090")
    code, expected = binary_json(memtrack_bin, "fit", path, "--profile", "rtx5090")
    assert result.to_dict() == expected and result.exit_code == code
    gpu = result.devices[0]
    assert gpu.device == "gpu:0" and gpu.budget_bytes == 25769803776
    assert bool(result) == result.fits
    if gpu.fits:
        assert gpu.headroom_bytes == gpu.budget_bytes - gpu.needed_bytes
    ranked = memtrack.fit(path, profile=["rtx5090", "h100-sxm"])
    assert [p.profile for p in ranked.profiles] == ["rtx5090", "h100-sxm"]  # sorted by budget


def test_a_snapshot_dict_fits_as_its_pickle_does(traces_dir):
    path = traces_dir / SILMONT
    from_dict = memtrack.fit(memtrack.from_snapshot(load_snapshot(path)), profile="l4")
    from_file = memtrack.fit(str(path), profile="l4")
    assert from_dict.devices == from_file.devices
    assert (from_dict.fits, from_dict.refused, from_dict.operations) == \
        (from_file.fits, from_file.refused, from_file.operations)


def test_devices_in_bytes_and_a_refusal(tmp_path):
    trace = tmp_path / "two.trace"
    trace.write_text("memtrack-trace 1\nevents\nalloc gpu:0 600\nalloc gpu:0 600\nend 2\n")
    result = memtrack.fit(str(trace), gpu_budget=["0:1000"])
    assert result.exit_code == 1 and not result
    gpu = result.devices[0]
    assert (gpu.budget_bytes, gpu.needed_bytes, gpu.shortfall_bytes) == (1000, 1200, 200)
    assert result.first_refusal.bytes == 600 and result.first_refusal.available_bytes == 400
    assert result.refused == 1


def test_bad_input_raises_with_the_commands_message(tmp_path):
    with pytest.raises(memtrack.InputError, match="missing.trace") as error:
        memtrack.fit(str(tmp_path / "missing.trace"), profile="rtx5090")
    assert error.value.exit_code == 2
    trace = tmp_path / "one.trace"
    trace.write_text("memtrack-trace 1\nevents\nalloc gpu:0 1\nend 1\n")
    with pytest.raises(memtrack.InputError, match="unknown profile 'no-such-gpu'"):
        memtrack.fit(str(trace), profile="no-such-gpu")
    with pytest.raises(TypeError):
        memtrack.fit(str(trace), profile="rtx5090", gpus=1.0)


def cli_has(memtrack_bin, command, flag):
    done = subprocess.run([memtrack_bin, command, "--help"], capture_output=True, text=True,
                          check=False)
    return flag in done.stdout


def test_the_exact_allocator_passes_through(traces_dir, memtrack_bin):
    if not cli_has(memtrack_bin, "fit", "--allocator"):
        pytest.skip("this memtrack fit has no --allocator yet")
    path = str(traces_dir / SILMONT)
    result = memtrack.fit(path, profile="rtx5090", allocator="exact")
    _, expected = binary_json(memtrack_bin, "fit", path, "--profile", "rtx5090",
                              "--allocator", "exact")
    assert result.to_dict() == expected


def test_the_pytorch_allocator_passes_through(traces_dir, memtrack_bin):
    if not cli_has(memtrack_bin, "fit", "--allocator"):
        pytest.skip("this memtrack fit has no --allocator yet")
    path = str(traces_dir / SILMONT)
    result = memtrack.fit(path, profile="rtx5090", allocator="pytorch",
                          alloc_conf="expandable_segments:False")
    _, expected = binary_json(memtrack_bin, "fit", path, "--profile", "rtx5090", "--allocator",
                              "pytorch", "--alloc-conf", "expandable_segments:False")
    assert result.to_dict() == expected


def test_replay_agrees_on_a_shared_snapshot(traces_dir, memtrack_bin):
    path = str(traces_dir / SILMONT)
    result = memtrack.replay(path)
    assert result.exit_code == 0 and result
    if cli_has(memtrack_bin, "replay", "--json"):
        _, expected = binary_json(memtrack_bin, "replay", path)
        assert result.to_dict() == expected


def test_report_writes_one_html_file(traces_dir, tmp_path):
    out = tmp_path / "report.html"
    result = memtrack.report(str(traces_dir / SILMONT), out, profile="rtx5090")
    assert result.exit_code == 0 and result.path == str(out)
    text = out.read_text()
    assert text.lower().startswith("<!doctype html") and "<svg" in text
    svg = memtrack.report(memtrack.from_snapshot(load_snapshot(traces_dir / SILMONT)),
                          tmp_path / "charts.svg")
    assert svg.exit_code == 0 and (tmp_path / "charts.svg").read_text().lstrip().startswith("<")


def test_profiles_are_the_built_in_ones():
    by_name = {p.name: p for p in memtrack.profiles()}
    assert len(by_name) == 18
    rtx = by_name["rtx5090"]
    assert rtx.cuda_total_bytes == 33680457728
    assert rtx.limit_bytes == 24 * memtrack.GiB  # min(floor(total x 0.9), 24 GiB usable)
    assert by_name["cpu"].is_cpu and by_name["cpu"].limit_bytes == 16 * memtrack.GiB
    assert rtx.to_dict()["name"] == "rtx5090"


@pytest.mark.parametrize("args", [
    ["profiles"],
    ["budget", "--gpu", "0:32GiB", "--gpu", "1:24GiB,usable=20GiB", "--fraction", "0.9"],
    ["budget", "--gpu", "0:-1"],
    ["fit", "/nonexistent.trace", "--profile", "rtx5090"],
    ["no-such-command"],
    ["fit", "--help"],
])
def test_python_dash_m_memtrack_is_the_binary(args, memtrack_bin):
    binary = subprocess.run([memtrack_bin, *args], capture_output=True, check=False)
    module = subprocess.run([sys.executable, "-m", "memtrack", *args], capture_output=True,
                            check=False, env=dict(os.environ))
    assert (module.returncode, module.stdout, module.stderr) == \
        (binary.returncode, binary.stdout, binary.stderr)
