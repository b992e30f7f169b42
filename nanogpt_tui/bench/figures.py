"""How the benchmarks print their figures: a two-column rich table (no torch)."""

from __future__ import annotations

import statistics
from typing import Sequence

from rich.console import Console
from rich.table import Table

from nanogpt_tui.cli.common import CommandConsole


def print_figures(title: str, figures: dict[str, str], console: Console | None = None) -> None:
    """Print a two-column table of named, already formatted figures."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, value in figures.items():
        table.add_row(name, value)
    printer = console or CommandConsole()
    if isinstance(printer, CommandConsole):
        printer.print_whole(table)  # piped: each figure on one line, at the table's full width
    else:
        printer.print(table)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile of `values` by nearest rank: one of the values, never between two."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ratio_spread(ratios: Sequence[float]) -> str:
    """Paired ratios as their median and spread: "0.983 (0.951 to 1.012 over 5 pairs)".

    Each pair measured both sides back to back, so a busy moment hits both; the median of the pairs says
    which side is faster, and the spread how far one pair can stray from it (a regression shows as a
    median below the others' spread, noise as a wide one)."""
    pairs = f"{len(ratios)} pair{'' if len(ratios) == 1 else 's'}"
    return f"{statistics.median(ratios):.3f} ({min(ratios):.3f} to {max(ratios):.3f} over {pairs})"
