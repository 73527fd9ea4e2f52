"""Human-friendly sizes and durations for flags and StorageClass parameters.

Operators write ``10Gi`` in Kubernetes and ``64M`` on command lines; both must
mean the same thing everywhere, so parsing lives in one place.
"""

from __future__ import annotations

import re

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)(i?)([bB]?)\s*$")
_POW = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_size(text: str | int) -> int:
    """Parse ``"512"``, ``"64K"``, ``"1Mi"``, ``"10GiB"``, ``"2G"`` into bytes.

    Suffixes with or without ``i`` are binary (1024-based): a cache size of
    ``10G`` meaning 10 GiB is what every FUSE tool's users expect, and the
    Kubernetes decimal forms (``10G`` = 10^9) are close enough that the
    difference never matters for a cache bound.  Kubernetes quantities passed
    as capacity go through the CSI ``capacity_range`` in bytes, not this.
    """
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"size must not be negative: {text}")
        return text
    m = _SIZE_RE.match(str(text))
    if not m:
        raise ValueError(f"not a size: {text!r} (examples: 4096, 64K, 1Mi, 10GiB)")
    number, unit = float(m.group(1)), m.group(2).lower()
    value = int(number * (1024 ** _POW[unit]))
    return value


def format_size(n: float) -> str:
    """Render bytes for humans (``1.5 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


_DUR_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DUR_MULT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str | float | int) -> float:
    """Parse ``"30"``, ``"1.5s"``, ``"250ms"``, ``"5m"`` into seconds."""
    if isinstance(text, (int, float)):
        if text < 0:
            raise ValueError(f"duration must not be negative: {text}")
        return float(text)
    m = _DUR_RE.match(str(text))
    if not m:
        raise ValueError(f"not a duration: {text!r} (examples: 30, 1.5s, 250ms, 5m)")
    return float(m.group(1)) * _DUR_MULT[m.group(2)]
