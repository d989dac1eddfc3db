"""PNG plots (matplotlib, Agg backend): bytes, so the caller decides where they go."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from xdetox.report.labels import label


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def _err(values: list[float | None], cis: list[list[float] | None]) -> np.ndarray:
    """Asymmetric error bars (2, n) from intervals; 0 where there is none."""
    lo = [v - c[0] if v is not None and c else 0.0 for v, c in zip(values, cis, strict=True)]
    hi = [c[1] - v if v is not None and c else 0.0 for v, c in zip(values, cis, strict=True)]
    return np.clip(np.array([lo, hi]), 0, None)


def before_after_bars(
    languages: list[str], base: list[dict[str, Any] | None], tuned: list[dict[str, Any] | None],
    metric: str, title: str, tuned_label: str = "tuned",
) -> bytes:
    """Grouped bars per language (and the average, last): base vs tuned with 95% intervals.
    Missing values are drawn as 'n/a' rather than as a zero-height bar."""
    plt = _plt()
    x = np.arange(len(languages))
    w = 0.38
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(languages) + 2), 4.2))
    ymax = 0.0
    for offset, series, name, color in ((-w / 2, base, "base (before)", "#8c8c8c"),
                                        (w / 2, tuned, f"{tuned_label} (after)", "#2a7ab9")):
        vals = [s.get("value") if s else None for s in series]
        cis = [s.get("ci") if s else None for s in series]
        heights = [v if v is not None else 0.0 for v in vals]
        ax.bar(x + offset, heights, w, yerr=_err(vals, cis), capsize=3, label=name, color=color,
               error_kw={"elinewidth": 1, "ecolor": "#333333"})
        for xi, v, other in zip(x + offset, vals, base if series is tuned else tuned, strict=True):
            if v is None and (other or {}).get("value") is not None:
                ax.text(xi, 0.01, "no\nscore", ha="center", va="bottom", fontsize=7, color="#555555",
                        transform=ax.get_xaxis_transform())
        ymax = max([ymax] + [c[1] for c in cis if c] + [v for v in vals if v is not None])
    for xi, b, t in zip(x, base, tuned, strict=True):
        if (b or {}).get("value") is None and (t or {}).get("value") is None:
            ax.text(xi, 0.01, "no scores", ha="center", va="bottom", fontsize=8, color="#555555", rotation=90,
                    transform=ax.get_xaxis_transform())
    ax.set_xticks(x, languages)
    if languages and languages[-1] == "avg":
        ax.axvline(len(languages) - 1.5, color="#bbbbbb", lw=0.8, ls="--")
    ax.set_ylabel(label(metric))
    ax.set_ylim(0, max(ymax * 1.15, 1e-3))
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return _png(fig)


def heatmap(rows: list[str], cols: list[str], values: np.ndarray, title: str, cbar_label: str,
            detected: np.ndarray | None = None) -> bytes:
    """Train setting x evaluation language; values are relative changes (fractions), NaN = missing.
    Cells not ``detected`` (paired CI includes 0) are left uncoloured and labelled "n.s."."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.65 * len(cols) + 3), max(3.0, 0.45 * len(rows) + 1.5)))
    shown = values.copy()
    if detected is not None:
        shown[~detected] = np.nan
    finite = shown[np.isfinite(shown)]
    lim = float(np.max(np.abs(finite))) if finite.size else 1.0
    lim = lim or 1.0
    im = ax.imshow(np.ma.masked_invalid(shown * 100), cmap="RdBu_r", vmin=-lim * 100, vmax=lim * 100, aspect="auto")
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("evaluation language")
    ax.set_ylabel("training setting")
    for i in range(len(rows)):
        for j in range(len(cols)):
            v = values[i, j]
            if not np.isfinite(v):
                txt = "n/a"
            elif detected is not None and not detected[i, j]:
                txt = "n.s."
            else:
                txt = f"{v * 100:+.0f}%"
            color = "white" if np.isfinite(shown[i, j]) and abs(v) > 0.6 * lim else "black"
            ax.text(j, i, txt, ha="center", va="center", fontsize=7, color=color)
    cb = fig.colorbar(im, ax=ax)
    cb.set_label(cbar_label)
    ax.set_title(title, fontsize=10)
    return _png(fig)


def alignment_scatter(points: dict[str, dict[str, float | None]], correlations: dict[str, dict[str, Any]],
                      metric: str, title: str) -> bytes:
    """One panel per alignment score: x = score, y = relative reduction of ``metric`` per language,
    least-squares line and Pearson r in the panel title."""
    plt = _plt()
    kinds = [("retrieval_accuracy", "retrieval accuracy with the pivot (mean over layers)"),
             ("paired_cosine", "paired cosine with the pivot (mean over layers)")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, (kind, xlabel) in zip(axes, kinds, strict=True):
        langs = [lang for lang, p in points.items() if p.get(kind) is not None and p.get("change") is not None]
        xs = np.array([points[lang][kind] for lang in langs], dtype=float)
        ys = np.array([points[lang]["change"] for lang in langs], dtype=float) * 100
        ax.scatter(xs, ys, color="#2a7ab9", zorder=3)
        for lang, xv, yv in zip(langs, xs, ys, strict=True):
            ax.annotate(lang, (xv, yv), textcoords="offset points", xytext=(4, 3), fontsize=8)
        corr = correlations.get(kind) or {}
        if len(xs) >= 2 and np.ptp(xs) > 0:
            slope, icept = np.polyfit(xs, ys, 1)
            grid = np.linspace(xs.min(), xs.max(), 50)
            ax.plot(grid, slope * grid + icept, color="#d95f02", lw=1.5, label="least-squares fit")
            ax.legend(fontsize=8, frameon=False)
        r = corr.get("r")
        sub = f"r = {r:.2f}, p = {corr.get('p_value'):.3g}, n = {corr.get('n')}" if r is not None else \
            f"r: n/a ({corr.get('reason') or 'too few languages'})"
        ax.set_title(sub, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel(f"reduction of {label(metric, short=True)}, (before − after)/before (%)", fontsize=9)
        ax.axhline(0, color="#bbbbbb", lw=0.8)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    return _png(fig)
