"""Numbers and sizes as people read them: one unit everywhere (the screens, the CLI, engine messages). Torch-free."""

from __future__ import annotations


def human_count(n: int) -> str:
    """1234567 -> '1.23M': parameter counts at a glance."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def human_size(n: int) -> str:
    """Bytes in powers of 1024, named as such (KiB, MiB, GiB), as devices report memory."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
