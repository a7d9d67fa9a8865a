"""The `livedenoise methods` table: every registered method with its window, latency, size and paper."""

from __future__ import annotations

import importlib.util
from types import ModuleType

__all__ = ["methods_table"]


def _parameters(catalogue: ModuleType, name: str) -> str:
    from livedenoise.models.recipes import get_recipe

    count = sum(p.numel() for p in get_recipe(name).build_model().parameters())
    return f"{count / 1e6:.2f} M" if count >= 100_000 else f"{count / 1e3:.1f} k"


def methods_table(catalogue: ModuleType, *, count_parameters: bool = True, markdown: bool = False) -> str:
    """Rows of ``catalogue`` (``livedenoise.models.catalogue``) at each method's defaults.

    Parameters are counted by building the network (needs torch; shown as ``-`` without it).
    """
    count_parameters = count_parameters and importlib.util.find_spec("torch") is not None
    header = ("name", "family", "window (before · out · after)", "latency (frames)", "parameters", "paper")
    rows = []
    provisional = {name for name in catalogue.list_methods() if catalogue.method_info(name).provisional}
    for name in catalogue.list_methods():
        info = catalogue.method_info(name)
        w = info.config_cls().window()
        rows.append(
            (
                name,
                info.family,
                f"{w.before} · {w.out_frames} · {w.after}",
                str(w.latency_frames),
                _parameters(catalogue, name) if count_parameters else "-",
                info.paper,
            )
        )
    marker = " (provisional)"  # a method without public code: our reading of its paper
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in rows:
            name = f"`{r[0]}`" + (marker if r[0] in provisional else "")
            lines.append("| " + " | ".join([name, *r[1:]]) + " |")
        return "\n".join(lines)
    rows = [(r[0] + (marker if r[0] in provisional else ""), *r[1:]) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in rows)])
