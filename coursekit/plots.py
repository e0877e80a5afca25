"""Two small plot helpers shared by the lessons: loss curves and grouped bars.

    >>> ax = plot_losses({"LoRA r=8": [2.9, 2.1, 1.6], "full FT": [2.9, 1.8, 1.2]})
    >>> [line.get_label() for line in ax.get_lines()]
    ['LoRA r=8', 'full FT']
    >>> ax = bar_compare({"full FT": {"formula": 2.2, "measured": 2.2},
    ...                   "LoRA": {"formula": 0.5, "measured": 0.5}}, ylabel="GB")
    >>> [label.get_text() for label in ax.texts]       # each bar labelled with its value
    ['2.2', '0.5', '2.2', '0.5']

Both draw on ``ax`` when given (for side-by-side panels) and return the axes.
matplotlib is imported lazily, so importing coursekit stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["bar_compare", "plot_losses"]


def _axes(ax: Any, figsize: tuple[float, float]) -> Any:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1]


def plot_losses(histories: Mapping[str, Sequence[float]], ax: Any = None, *, title: str = "training loss",
                xlabel: str = "step", ylabel: str = "loss", logy: bool = False) -> Any:
    """One line per run: ``{"run name": [loss at step 1, step 2, ...]}``."""
    ax = _axes(ax, (6, 3.5))
    for name, losses in histories.items():
        ax.plot(range(1, len(losses) + 1), list(losses), marker="o", markersize=3, label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.xaxis.get_major_locator().set_params(integer=True)  # steps are whole numbers
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def bar_compare(groups: Mapping[str, Mapping[str, float]], ax: Any = None, *, ylabel: str = "",
                title: str = "", logy: bool = False, fmt: str = "{:.3g}") -> Any:
    """Grouped bars: ``{"group": {"series": value}}``; each bar is labelled with its value.

    Series missing from a group are left out of that group.
    """
    ax = _axes(ax, (7, 3.5))
    series = list(dict.fromkeys(s for bars in groups.values() for s in bars))
    width = 0.8 / max(len(series), 1)
    for i, name in enumerate(series):
        xs = [g + (i - (len(series) - 1) / 2) * width for g, bars in enumerate(groups.values()) if name in bars]
        ys = [bars[name] for bars in groups.values() if name in bars]
        rects = ax.bar(xs, ys, width=width, label=name)
        ax.bar_label(rects, labels=[fmt.format(y) for y in ys], fontsize=8, padding=2)
    ax.set_xticks(range(len(groups)), list(groups))
    ax.set(ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    ax.margins(y=0.15)
    if len(series) > 1:
        ax.legend(fontsize=8)
    return ax
