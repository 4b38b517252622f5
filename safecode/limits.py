"""Resource limits of one run, validated once when they are made."""

import math
import re
from dataclasses import dataclass
from typing import Optional

# Docker's own grammar for sizes (github.com/docker/go-units RAMInBytes), units in powers of 1024.
_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kmgt]?)i?b?$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
MIN_MEMORY = 6 << 20  # Docker refuses less than 6 MiB
MIN_SCRATCH = 1 << 20


def size_bytes(name, size):
    """Bytes in a Docker size such as "128m" (the `name` limit's), or ValueError if Docker would not accept it."""
    if isinstance(size, bool) or not isinstance(size, (str, int)):
        raise ValueError(f"{name} must be a size such as '128m', not {size!r}")
    match = _SIZE.match(str(size).strip())
    if not match:
        raise ValueError(f"{name} {size!r} is not a size Docker understands, such as '128m' or '1g'")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def memory_bytes(memory):
    """Bytes in a Docker memory size such as "128m", or ValueError if Docker would not accept it."""
    size = size_bytes("memory", memory)
    if size < MIN_MEMORY:
        raise ValueError(f"memory {memory!r} is below Docker's minimum of 6m")
    return size


def _number(name, value, *, minimum, integer=False):
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"{name} must be {kind}, not {value!r}")
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value!r}")
    return value


@dataclass(frozen=True)
class Limits:
    """What one run may use. Defaults are the seeds' limits; change one with dataclasses.replace."""

    timeout: float = 10.0  # seconds of wall-clock time
    memory: str = "128m"  # RAM, and RAM+swap: no swap at all
    cpus: float = 0.5  # CPU share
    pids: int = 64  # processes and threads
    max_output: int = 1_000_000  # bytes of stdout+stderr kept before the run is stopped
    max_code: int = 1_000_000  # bytes of UTF-8 source accepted
    max_files: int = 16 << 20  # bytes of files handed to the program, all together
    scratch: Optional[str] = None  # writable tmpfs at /tmp and /app/out, this size in all; None: nothing writable

    def __post_init__(self):
        _number("timeout", self.timeout, minimum=0.001)
        _number("cpus", self.cpus, minimum=0.01)
        _number("pids", self.pids, minimum=1, integer=True)
        _number("max_output", self.max_output, minimum=1, integer=True)
        _number("max_code", self.max_code, minimum=1, integer=True)
        _number("max_files", self.max_files, minimum=0, integer=True)
        memory_bytes(self.memory)
        object.__setattr__(self, "memory", str(self.memory).strip().lower())
        if self.scratch is not None:
            if size_bytes("scratch", self.scratch) < MIN_SCRATCH:
                raise ValueError(f"scratch {self.scratch!r} is below the minimum of 1m")
            object.__setattr__(self, "scratch", str(self.scratch).strip().lower())

    @property
    def scratch_bytes(self) -> int:
        """The scratch size in bytes; 0 when scratch is off."""
        return size_bytes("scratch", self.scratch) if self.scratch is not None else 0
