"""memtrack's exceptions: one class per kind of memtrack::Error, the numbers as attributes.

Pure Python (the extension module raises these), so they can be caught, built and pickled like
any exception.
"""

from __future__ import annotations

from typing import Optional


class Error(Exception):
    """Any error memtrack reports. ``kind`` names it as the C++ library does (``OutOfMemory``)."""

    kind = "Error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidConfig(Error, ValueError):
    """A GpuConfig breaks the rules (duplicate id, zero total, limits summing past 2^64 - 1)."""

    kind = "InvalidConfig"

    def __init__(self, detail: str, device: Optional[str] = None,
                 message: Optional[str] = None) -> None:
        super().__init__(message or (f"{device}: {detail}" if device else detail))
        self.detail = detail
        self.device = device


class UnknownDevice(Error, LookupError):
    """``gpu:N`` names a GPU that is not configured."""

    kind = "UnknownDevice"

    def __init__(self, device: Optional[str], message: Optional[str] = None) -> None:
        super().__init__(message or f"{device}: unknown device")
        self.device = device


class OutOfMemory(Error):
    """The request exceeds what the device (or every device, for ``auto``) has available.

    ``limit`` is the device's limit; 0 for ``auto``, which has no single limit.
    """

    kind = "OutOfMemory"

    def __init__(self, device: Optional[str], requested: int, available: int, limit: int,
                 message: Optional[str] = None) -> None:
        super().__init__(message or f"{device}: cannot allocate {requested} bytes, "
                         f"{available} of {limit} available")
        self.device = device
        self.requested = requested
        self.available = available
        self.limit = limit

    def __reduce__(self):
        return (type(self), (self.device, self.requested, self.available, self.limit,
                             self.message))


class AmbiguousDevice(Error, ValueError):
    """``auto`` given where a concrete device is needed (a free, a peak reset)."""

    kind = "AmbiguousDevice"

    def __init__(self, operation: str, message: Optional[str] = None) -> None:
        super().__init__(message or f"auto: {operation} needs a concrete device")
        self.device = "auto"
        self.operation = operation


class InvalidDeallocation(Error, ValueError):
    """More bytes freed than are allocated on the device."""

    kind = "InvalidDeallocation"

    def __init__(self, device: Optional[str], requested: int, allocated: int,
                 message: Optional[str] = None) -> None:
        super().__init__(message or f"{device}: cannot free {requested} bytes, "
                         f"{allocated} allocated")
        self.device = device
        self.requested = requested
        self.allocated = allocated

    def __reduce__(self):
        return (type(self), (self.device, self.requested, self.allocated, self.message))


class ParseError(Error, ValueError):
    """Text that is not a placement, fraction or byte size; a recording that cannot be read."""

    kind = "ParseError"

    def __init__(self, detail: str, message: Optional[str] = None) -> None:
        super().__init__(message or detail)
        self.detail = detail


class IoError(Error, OSError):
    """A file that cannot be opened, read, written or renamed; ``detail`` names it and says why."""

    kind = "IoError"

    def __init__(self, detail: str, message: Optional[str] = None) -> None:
        super().__init__(message or detail)
        self.detail = detail


class InputError(Error, ValueError):
    """The command refused its input (exit code 2): ``message`` is what it printed."""

    kind = "InputError"

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
