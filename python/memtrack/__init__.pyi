"""Type stubs of the memtrack package."""

import os
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from ._errors import (AmbiguousDevice as AmbiguousDevice, Error as Error,
                      InputError as InputError, InvalidConfig as InvalidConfig,
                      InvalidDeallocation as InvalidDeallocation, OutOfMemory as OutOfMemory,
                      ParseError as ParseError, UnknownDevice as UnknownDevice)
from ._memtrack import (DevicePlacement as DevicePlacement, Event as Event,
                        GpuConfig as GpuConfig, GpuSpec as GpuSpec,
                        MemoryTracker as MemoryTracker,
                        SharedMemoryTracker as SharedMemoryTracker, Trace as Trace,
                        from_snapshot as from_snapshot, open as open, parse_size as parse_size)

KiB: int
MiB: int
GiB: int
TiB: int

Recording = Union[str, os.PathLike[str], Trace]

class Result:
    exit_code: int
    def __init__(self, data: Dict[str, Any], exit_code: int) -> None: ...
    def to_dict(self) -> Dict[str, Any]: ...
    def __getattr__(self, name: str) -> Any: ...
    def __getitem__(self, name: str) -> Any: ...

class FitResult(Result):
    def __bool__(self) -> bool: ...

class ReplayResult(Result):
    def __bool__(self) -> bool: ...

class ReportResult(Result): ...

class Profile(Result):
    def __init__(self, data: Dict[str, Any]) -> None: ...

def run(*args: str) -> Tuple[int, str, str]: ...
def profiles() -> List[Profile]: ...
def fit(recording: Union[Recording, Sequence[Recording]],
        profile: Union[None, str, Sequence[str]] = None, *, gpus: Optional[int] = None,
        placement: str = "recorded", allocator: Optional[str] = None,
        alloc_conf: Optional[str] = None, map: Iterable[str] = (), gpu: Iterable[str] = (),
        gpu_budget: Iterable[str] = (), fraction: Optional[str] = None,
        cpu_limit: Optional[str] = None, allow_inconsistent: bool = False,
        production_only: bool = False) -> FitResult: ...
def replay(recording: Recording, profile: Optional[str] = None, *, gpus: Optional[int] = None,
           allocator: Optional[str] = None, alloc_conf: Optional[str] = None,
           gpu: Iterable[str] = (), gpu_budget: Iterable[str] = (),
           fraction: Optional[str] = None, cpu_limit: Optional[str] = None,
           allow_inconsistent: bool = False, production_only: bool = False) -> ReplayResult: ...
def report(recording: Recording, path: Union[str, os.PathLike[str]],
           profile: Optional[str] = None, *, gpus: Optional[int] = None,
           format: Optional[str] = None, allocator: Optional[str] = None,
           alloc_conf: Optional[str] = None, gpu: Iterable[str] = (),
           gpu_budget: Iterable[str] = (), fraction: Optional[str] = None,
           cpu_limit: Optional[str] = None) -> ReportResult: ...
