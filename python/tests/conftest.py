"""Shared fixtures of the Python package's tests: the shared recordings, the memtrack binary."""

import os
import pathlib
import pickle

import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("MEMTRACK_SOURCE_DIR",
                                         pathlib.Path(__file__).resolve().parents[2]))


def shared_traces() -> pathlib.Path:
    """../shared/traces beside the repository, or MEMTRACK_SHARED_TRACES."""
    return pathlib.Path(os.environ.get("MEMTRACK_SHARED_TRACES",
                                       SOURCE_DIR.parent / "shared" / "traces"))


def shared_snapshots():
    folder = shared_traces() / "pytorch"
    return sorted(folder.glob("*.pickle")) if folder.is_dir() else []


@pytest.fixture
def traces_dir() -> pathlib.Path:
    folder = shared_traces()
    if not folder.is_dir():
        pytest.skip(f"the shared recordings are not here ({folder}); set MEMTRACK_SHARED_TRACES "
                    "to their folder to run this test")
    return folder


@pytest.fixture
def memtrack_bin() -> str:
    path = os.environ.get("MEMTRACK_BIN")
    if not path:
        pytest.skip("MEMTRACK_BIN (the memtrack binary) is not set: run through ctest")
    return path


class PlainDataUnpickler(pickle.Unpickler):
    """Python's own pickle, refusing any global (a snapshot is plain data; a torch class or
    anything else that would run code is an error, as in memtrack's pickle reader)."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load the global {module}.{name}")


def load_snapshot(path: pathlib.Path):
    with open(path, "rb") as file:
        return PlainDataUnpickler(file).load()
