"""memtrack: byte-exact accounts of GPU and CPU memory, from Python.

The tracker is memtrack's C++ tracker itself (``MemoryTracker``, ``SharedMemoryTracker``): every
byte count a Python int from 0 to 2^64 - 1, never a float. Recordings (PyTorch snapshots, on
disk or as the dict ``torch.cuda.memory._snapshot()`` returns; Kineto traces; RMM logs; Nsight
exports; memtrack traces) open with ``open`` and ``from_snapshot``; ``fit``, ``replay`` and
``report`` run the very commands of the ``memtrack`` binary, in-process, and return their
``--json`` fields as attributes (and ``to_dict()``).

    >>> import memtrack
    >>> print(memtrack.fit("serve.pickle", profile="all"))
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ._errors import (AmbiguousDevice, Error, InputError, InvalidConfig, InvalidDeallocation,
                      IoError, OutOfMemory, ParseError, UnknownDevice)
from ._memtrack import (DevicePlacement, Event, GpuConfig, GpuSpec, MemoryTracker,
                        SharedMemoryTracker, Trace, from_snapshot, open, parse_size)
from . import _memtrack

__all__ = [
    "AmbiguousDevice", "DevicePlacement", "Error", "Event", "FitResult", "GpuConfig", "GpuSpec",
    "GiB", "InputError", "InvalidConfig", "InvalidDeallocation", "IoError", "KiB", "MemoryTracker", "MiB",
    "OutOfMemory", "ParseError", "Profile", "ReplayResult", "ReportResult", "Result",
    "SharedMemoryTracker", "TiB", "Trace", "UnknownDevice", "fit", "from_snapshot", "open",
    "parse_size", "profiles", "replay", "report", "run",
]

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40

Recording = Union[str, "os.PathLike[str]", Trace]


class Result:
    """A command's answer: each field of its ``--json`` output as an attribute (nested objects
    too), ``to_dict()`` for the JSON itself, and ``exit_code`` (0 yes, 1 no)."""

    def __init__(self, data: Dict[str, Any], exit_code: int) -> None:
        self._data = data
        self.exit_code = exit_code

    def to_dict(self) -> Dict[str, Any]:
        """The command's ``--json`` output, as parsed (a deep copy)."""
        return json.loads(json.dumps(self._data))

    def __getattr__(self, name: str) -> Any:
        try:
            return _wrap(self.__dict__["_data"][name])
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}") from None

    def __getitem__(self, name: str) -> Any:
        return self._data[name]

    def __dir__(self) -> List[str]:
        return sorted(set(super().__dir__()) | set(self._data))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Result) and self._data == other._data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"


class _Fields(Result):
    """A nested JSON object of a result (a device, a profile line, a refusal)."""

    def __init__(self, data: Dict[str, Any]) -> None:
        super().__init__(data, 0)

    def __repr__(self) -> str:
        return repr(self._data)


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return _Fields(value)
    if isinstance(value, list):
        return [_wrap(item) for item in value]
    return value


class FitResult(Result):
    """``memtrack fit --json``: one profile's devices, or (several profiles, ``"all"``) one line
    per profile sorted by budget and ``smallest_fitting``."""

    def __bool__(self) -> bool:
        return bool(self._data["fits"])

    def __str__(self) -> str:
        d = self._data
        if "profiles" in d:
            lines = [f"memtrack fit: {len(d['profiles'])} profiles, placement {d['placement']}; "
                     "per profile its tightest device"]
            for p in d["profiles"]:
                margin = (f"headroom {p['headroom_bytes']}" if p["fits"]
                          else f"short by {p['shortfall_bytes']}")
                lines.append(f"  {p['profile']:<16} {p['device']:<6} budget {p['budget_bytes']} "
                             f"needed {p['needed_bytes']} {margin} bytes: "
                             f"{'FITS' if p['fits'] else 'does not fit'}")
            lines.append(f"smallest that fits: {d['smallest_fitting'] or 'none'}")
            return "\n".join(lines)
        lines = [f"memtrack fit on {d['budgets']}: {d['operations']} operations, "
                 f"{d['refused']} refused"]
        for device in d["devices"]:
            margin = (f"headroom {device['headroom_bytes']}" if device["fits"]
                      else f"short by {device['shortfall_bytes']}")
            lines.append(f"  {device['device']:<6} budget {device['budget_bytes']} needed "
                         f"{device['needed_bytes']} {margin} bytes")
        lines.append(f"verdict: {'FITS' if d['fits'] else 'DOES NOT FIT'}")
        return "\n".join(lines)


class ReplayResult(Result):
    """``memtrack replay``: its ``--json`` fields where the command has that flag; until then
    ``agree`` (exit code 0: the production tracker, the reference model and the recording's
    checkpoints agree) and ``output``, the report it printed."""

    def __bool__(self) -> bool:
        return self.exit_code == 0


class ReportResult(Result):
    """``memtrack report``: the file written (``path``) and what the command printed."""


class Profile(Result):
    """A built-in device profile (``memtrack profiles``)."""

    def __init__(self, data: Dict[str, Any]) -> None:
        super().__init__(data, 0)


def run(*args: str) -> Tuple[int, str, str]:
    """Runs ``memtrack ARGS...`` in this process: (exit code, standard output, standard error)."""
    code, out, err = _memtrack._run_cli([os.fspath(a) for a in args])
    return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def profiles() -> List[Profile]:
    """The built-in device profiles, by name: CUDA total, limit, compute capability, ..."""
    return [Profile(p) for p in _memtrack._profiles()]


class _Paths:
    """The files a command reads: a Trace in memory is written to a temporary trace first."""

    def __init__(self, recordings: Union[Recording, Sequence[Recording]]) -> None:
        if isinstance(recordings, (str, os.PathLike, Trace)):
            recordings = [recordings]
        self._recordings = list(recordings)
        if not self._recordings:
            raise ValueError("expected at least one recording")
        self._temporary: Optional[tempfile.TemporaryDirectory] = None
        self.paths: List[str] = []

    def __enter__(self) -> List[str]:
        for i, recording in enumerate(self._recordings):
            if isinstance(recording, Trace) and recording.path is not None:
                self.paths.append(recording.path)
            elif isinstance(recording, Trace):
                if self._temporary is None:
                    self._temporary = tempfile.TemporaryDirectory(prefix="memtrack-")
                path = os.path.join(self._temporary.name, f"recording{i}.trace")
                recording.save(path)
                self.paths.append(path)
            elif isinstance(recording, (str, os.PathLike)):
                self.paths.append(os.fspath(recording))
            else:
                raise TypeError("a recording is a path or a memtrack.Trace, got "
                                f"{type(recording).__name__}")
        return self.paths

    def __exit__(self, *exc: object) -> None:
        if self._temporary is not None:
            self._temporary.cleanup()


def _flags(profile: Union[None, str, Sequence[str]] = None, gpus: Optional[int] = None,
           allocator: Optional[str] = None, alloc_conf: Optional[str] = None,
           gpu: Iterable[str] = (), gpu_budget: Iterable[str] = (),
           fraction: Optional[str] = None, cpu_limit: Optional[str] = None,
           allow_inconsistent: bool = False, production_only: bool = False) -> List[str]:
    flags: List[str] = []
    if profile is not None:
        flags += ["--profile", profile if isinstance(profile, str) else ",".join(profile)]
    if gpus is not None:
        if isinstance(gpus, bool) or not isinstance(gpus, int):
            raise TypeError("gpus: expected an int")
        flags += ["--gpus", str(gpus)]
    if allocator is not None:
        flags += ["--allocator", allocator]
    if alloc_conf is not None:
        flags += ["--alloc-conf", alloc_conf]
    for text in gpu:
        flags += ["--gpu", text]
    for text in gpu_budget:
        flags += ["--gpu-budget", text]
    if fraction is not None:
        flags += ["--fraction", str(fraction)]
    if cpu_limit is not None:
        flags += ["--cpu-limit", str(cpu_limit)]
    if allow_inconsistent:
        flags.append("--allow-inconsistent")
    if production_only:
        flags.append("--production-only")
    return flags


def _checked(command: str, args: List[str]) -> Tuple[int, str]:
    code, out, err = run(command, *args)
    if code not in (0, 1):
        raise InputError(err.strip() or out.strip(), code)
    return code, out


def fit(recording: Union[Recording, Sequence[Recording]],
        profile: Union[None, str, Sequence[str]] = None, *, gpus: Optional[int] = None,
        placement: str = "recorded", allocator: Optional[str] = None,
        alloc_conf: Optional[str] = None, map: Iterable[str] = (), gpu: Iterable[str] = (),
        gpu_budget: Iterable[str] = (), fraction: Optional[str] = None,
        cpu_limit: Optional[str] = None, allow_inconsistent: bool = False,
        production_only: bool = False) -> FitResult:
    """Does the recording fit? ``memtrack fit ... --json``, in-process.

    ``profile``: a name (``"rtx5090"``), a node (``"2xh100-sxm"``), a list of names, or
    ``"all"``; or devices in bytes through ``gpu``/``gpu_budget``/``fraction``/``cpu_limit`` (as
    ``memtrack budget`` takes them). ``allocator`` (``"exact"`` or ``"pytorch"``) and
    ``alloc_conf`` (``PYTORCH_CUDA_ALLOC_CONF`` text) pass through as ``--allocator`` and
    ``--alloc-conf``. Several recordings run one after another on the same devices. Raises
    ``InputError`` where the command exits 2 (bad input); a recording that does not fit is a
    result with ``fits`` false.
    """
    flags = _flags(profile, gpus, allocator, alloc_conf, gpu, gpu_budget, fraction, cpu_limit,
                   allow_inconsistent, production_only)
    flags += ["--placement", placement]
    for entry in map:
        flags += ["--map", entry]
    with _Paths(recording) as paths:
        code, out = _checked("fit", [*paths, *flags, "--json"])
    return FitResult(json.loads(out), code)


def replay(recording: Recording, profile: Optional[str] = None, *, gpus: Optional[int] = None,
           allocator: Optional[str] = None, alloc_conf: Optional[str] = None,
           gpu: Iterable[str] = (), gpu_budget: Iterable[str] = (),
           fraction: Optional[str] = None, cpu_limit: Optional[str] = None,
           allow_inconsistent: bool = False, production_only: bool = False) -> ReplayResult:
    """Replays a recording through the production tracker and the reference model in lockstep:
    ``memtrack replay ... --json``, in-process. Without a profile, the recording's own budgets
    (none for a PyTorch snapshot: measuring only)."""
    flags = _flags(profile, gpus, allocator, alloc_conf, gpu, gpu_budget, fraction, cpu_limit,
                   allow_inconsistent, production_only)
    with _Paths(recording) as paths:
        if not _accepts("replay", "--json"):
            # A memtrack whose replay prints no JSON yet: its verdict and its report as text.
            code, out = _checked("replay", [*paths, *flags])
            return ReplayResult({"agree": code == 0, "output": out}, code)
        code, out = _checked("replay", [*paths, *flags, "--json"])
    return ReplayResult(json.loads(out), code)


_accepted: Dict[Tuple[str, str], bool] = {}


def _accepts(command: str, flag: str) -> bool:
    """Whether ``memtrack COMMAND`` takes ``FLAG`` (from its --help, asked once)."""
    if (command, flag) not in _accepted:
        _, out, _ = run(command, "--help")
        _accepted[(command, flag)] = flag in out.split()
    return _accepted[(command, flag)]


def report(recording: Recording, path: Union[str, "os.PathLike[str]"],
           profile: Optional[str] = None, *, gpus: Optional[int] = None,
           format: Optional[str] = None, allocator: Optional[str] = None,
           alloc_conf: Optional[str] = None, gpu: Iterable[str] = (),
           gpu_budget: Iterable[str] = (), fraction: Optional[str] = None,
           cpu_limit: Optional[str] = None) -> ReportResult:
    """Draws a recording into one self-contained HTML file (or SVG: ``format="svg"`` or a
    ``.svg`` path): ``memtrack report TRACE -o PATH``, in-process."""
    flags = _flags(profile, gpus, allocator, alloc_conf, gpu, gpu_budget, fraction, cpu_limit)
    if format is not None:
        flags += ["--format", format]
    with _Paths(recording) as paths:
        code, out = _checked("report", [*paths, "-o", os.fspath(path), *flags])
    return ReportResult({"path": os.fspath(path), "output": out}, code)
