"""`cmake --install` puts the package into site-packages under the prefix; a clean interpreter
(no PYTHONPATH, no user site) imports it from there and uses it."""

import os
import pathlib
import subprocess
import sys
import sysconfig

import pytest

from conftest import shared_traces


def test_the_installed_package_imports_in_a_clean_interpreter(tmp_path):
    build_dir = os.environ.get("MEMTRACK_BUILD_DIR")
    if not build_dir:
        pytest.skip("MEMTRACK_BUILD_DIR is not set: run through ctest")
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", build_dir, "--prefix", str(prefix), "--component",
                    "python"], check=True, capture_output=True)
    site_folder = os.path.basename(sysconfig.get_path("platlib"))
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = prefix / "lib" / version / site_folder
    installed = sorted(p.name for p in (site / "memtrack").iterdir())
    assert "__init__.py" in installed and "__init__.pyi" in installed and "py.typed" in installed
    assert any(name.startswith("_memtrack.") and name.endswith(".so") for name in installed)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import memtrack\n"
        "assert memtrack.__file__.startswith(sys.argv[1]), memtrack.__file__\n"
        "t = memtrack.MemoryTracker(memtrack.GpuConfig([memtrack.GpuSpec(0, 1000, "
        "memory_fraction='1')]))\n"
        "print(t.allocate('auto', 1000), t.available('gpu:0'))\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run([sys.executable, "-I", "-c", script, str(site)], capture_output=True,
                          text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "gpu:0 0\n"
    # The acceptance line, from the installed package.
    snapshot = shared_traces() / "pytorch" / "silmont_mem_snapshot.pickle"
    if not snapshot.is_file():
        pytest.skip(f"the shared recordings are not here ({snapshot.parent})")
    acceptance = (f"import sys; sys.path.insert(0, sys.argv[1]); import memtrack; "
                  f"print(memtrack.fit({str(snapshot)!r}, profile='all'))")
    done = subprocess.run([sys.executable, "-I", "-c", acceptance, str(site)],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert "smallest that fits" in done.stdout
