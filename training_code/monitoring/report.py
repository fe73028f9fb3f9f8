"""The human report: one self-contained HTML page, a section per feature.

Each section draws the baseline and the current distribution over each other (numeric: share per
bin, and the two CDFs with the largest gap marked, that gap being the drift distance; string: share
per category), then gives the distance, its threshold and the verdict.

The charts are inline SVG written here rather than matplotlib PNGs: the page stays one small,
sharp, self-contained file, and drawing takes milliseconds instead of seconds per run (matplotlib
spent ~3 s importing and laying out text for a dozen features on our CI machines).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from monitoring.capture import InputIssue
from monitoring.checks import FeatureVerdict
from monitoring.sketch import KllSketch
from monitoring.stats import BaselineFeature, FeatureProfile

MAX_CATEGORIES_DRAWN = 15
BINS = 30
CDF_POINTS = 300
BASE_COLOR, CUR_COLOR = "#1f77b4", "#d62728"
W, H, PAD = 460, 220, 40  # one chart panel, in SVG pixels


def render(verdicts: Sequence[FeatureVerdict], baseline: Mapping[str, BaselineFeature],
           current: Mapping[str, FeatureProfile], violations: Sequence[Mapping[str, str]],
           issue_counts: Mapping[str, int], issue_examples: Sequence[InputIssue],
           meta: Mapping[str, Any]) -> str:
    e = html.escape
    head = "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in meta.items())
    table = "".join(
        f"<tr class='{'bad' if v.checks else 'ok'}'><td><a href='#f-{i}'>{e(v.name)}</a></td>"
        f"<td>{v.inferred_type}</td><td>{_fmt(v.distance)}</td><td>{_fmt(v.threshold)}</td>"
        f"<td>{e(v.verdict)}</td></tr>" for i, v in enumerate(verdicts))
    cols = "".join(f"<li><b>{e(v['feature_name'])}</b>: {e(v['constraint_check_type'])}: "
                   f"{e(v['description'])}</li>" for v in violations
                   if v["constraint_check_type"] in ("missing_column_check", "extra_column_check"))
    issues = "".join(f"<li>{e(k)}: {n:,}</li>" for k, n in sorted(issue_counts.items()))
    examples = "".join(f"<li><code>{e(str(x))}</code></li>" for x in issue_examples)
    body = "".join(f"<section id='f-{i}'>{_section(v, baseline[v.name], current[v.name])}</section>"
                   for i, v in enumerate(verdicts))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Model Monitor report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1000px; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; }}
tr.bad td {{ background: #fde2e1; }} tr.ok td {{ background: #e6f4ea; }}
section {{ border-top: 1px solid #ddd; margin-top: 1.5em; padding-top: 1em; }}
.bad {{ color: #b3261e; font-weight: bold; }} .ok {{ color: #1e7b34; font-weight: bold; }}
svg text {{ font: 10px sans-serif; }}
</style></head><body>
<h1>Model Monitor: captured traffic against the baseline</h1>
<table>{head}</table>
<h2>Features</h2>
<table><tr><th>feature</th><th>type</th><th>distance</th><th>threshold</th><th>verdict</th></tr>{table}</table>
<h2>Columns</h2><ul>{cols or "<li>every request carried exactly the baseline's columns</li>"}</ul>
<h2>Input problems</h2><ul>{issues or "<li>none</li>"}</ul>
{f"<p>First examples (all of them are in capture_issues.jsonl):</p><ul>{examples}</ul>" if examples else ""}
{body}
</body></html>
"""


def _section(v: FeatureVerdict, base: BaselineFeature, cur: FeatureProfile) -> str:
    if base.sketch is not None and cur.is_numeric and base.sketch.count and cur.sketch.count:
        chart = _numeric_chart(base.sketch, cur.sketch)
    elif base.categories and not cur.is_numeric and cur.values:
        chart = _categorical_chart(base, cur)
    else:
        chart = "<p>(no distribution to draw)</p>"
    css = "bad" if v.checks else "ok"
    method = f" ({html.escape(v.method)})" if v.method else ""
    return (f"<h3>{html.escape(v.name)} <small>{v.inferred_type}</small></h3>"
            f"<p>baseline: {base.num_present:,} values present, {base.num_missing:,} missing; "
            f"current: {cur.types.present:,} present, {cur.types.missing:,} missing</p>"
            f"<p>distance{method}: <b>{_fmt(v.distance)}</b>, threshold {_fmt(v.threshold)}; "
            f"verdict: <span class='{css}'>{html.escape(v.verdict)}</span></p>"
            f"<p><span style='color:{BASE_COLOR}'>&#9632; baseline</span> "
            f"<span style='color:{CUR_COLOR}'>&#9632; current</span></p>{chart}")


# -- charts ----------------------------------------------------------------------------------
def _numeric_chart(base: KllSketch, cur: KllSketch) -> str:
    xb, xc = base.weighted_items()[0], cur.weighted_items()[0]
    # 1 %-99 % of both distributions: a few outliers must not squash the picture into one bin
    lo = min(base.quantile(0.01), cur.quantile(0.01))
    hi = max(base.quantile(0.99), cur.quantile(0.99))
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, BINS + 1)
    hb, hc = base.histogram(edges) / base.count, cur.histogram(edges) / cur.count
    top = float(max(hb.max(), hc.max())) or 1.0
    hist = _Panel("share per bin (1-99 % quantile range)", lo, hi, top)
    hist.steps(edges, hb, BASE_COLOR, fill=True)
    hist.steps(edges, hc, CUR_COLOR)
    keys = np.unique(np.concatenate([xb, xc]))
    fb, fc = base.cdf(keys), cur.cdf(keys)
    gap = int(np.argmax(np.abs(fb - fc)))
    # drawn on a grid (the page stays small), plus the point of the largest gap
    grid = np.unique(np.append(np.linspace(lo, hi, CDF_POINTS), keys[gap]))
    cdf = _Panel("cumulative distribution", lo, hi, 1.0)
    for sketch, color in ((base, BASE_COLOR), (cur, CUR_COLOR)):
        cdf.steps(np.append(grid, hi), sketch.cdf(grid), color, close=False)
    label = f"largest CDF gap {abs(fb[gap] - fc[gap]):.3f}"
    cdf.vline(float(keys[gap]), float(fb[gap]), float(fc[gap]), label)
    return hist.svg() + cdf.svg()


def _categorical_chart(base: BaselineFeature, cur: FeatureProfile) -> str:
    n_base = sum(base.categories.values()) or 1.0
    n_cur = sum(cur.values.values()) or 1
    shares = {k: (base.categories.get(k, 0.0) / n_base, cur.values.get(k, 0) / n_cur)
              for k in set(base.categories) | set(cur.values)}
    shown = sorted(shares, key=lambda k: (-max(shares[k]), k))[:MAX_CATEGORIES_DRAWN]
    top = max(max(shares[k]) for k in shown) or 1.0
    width, height, bottom = 2 * W, H + 60, H - PAD + 10
    slot = (width - 2 * PAD) / len(shown)
    parts = [_axis_frame(width, H, f"share per category (top {len(shown)} of {len(shares)})"
                         if len(shares) > len(shown) else "share per category", top)]
    for i, k in enumerate(shown):
        x0 = PAD + i * slot
        for j, (share, color) in enumerate(((shares[k][0], BASE_COLOR), (shares[k][1], CUR_COLOR))):
            h = share / top * (H - 2 * PAD)
            parts.append(f"<rect x='{x0 + slot * (0.1 + 0.4 * j):.1f}' y='{H - PAD - h:.1f}' "
                         f"width='{slot * 0.4:.1f}' height='{h:.1f}' fill='{color}' fill-opacity='0.7'/>")
        label = k if k in base.categories else f"{k} (new)"
        parts.append(f"<text transform='translate({x0 + slot / 2:.1f},{bottom}) rotate(30)'>"
                     f"{html.escape(label[:24])}</text>")
    return f"<svg width='{width}' height='{height}' xmlns='http://www.w3.org/2000/svg'>{''.join(parts)}</svg>"


class _Panel:
    """One x/y chart panel: data coordinates mapped onto W x H pixels."""

    def __init__(self, title: str, x0: float, x1: float, ytop: float) -> None:
        self.x0, self.x1, self.ytop = x0, x1, ytop
        self.parts = [_axis_frame(W, H, title, ytop)]
        for i in range(5):
            xv = x0 + (x1 - x0) * i / 4
            self.parts.append(f"<text x='{self.px(xv):.1f}' y='{H - PAD + 14}' "
                              f"text-anchor='middle'>{xv:.4g}</text>")

    def px(self, x: float) -> float:
        return PAD + (x - self.x0) / (self.x1 - self.x0) * (W - 2 * PAD)

    def py(self, y: float) -> float:
        return H - PAD - y / self.ytop * (H - 2 * PAD)

    def steps(self, edges: np.ndarray, values: np.ndarray, color: str, fill: bool = False,
              close: bool = True) -> None:
        """A step line: values[i] holds from edges[i] to edges[i + 1] (closed down to 0 for bars)."""
        pts = [(self.px(float(edges[0])), self.py(0.0))]
        for i, v in enumerate(values):
            y = self.py(float(v))
            pts += [(self.px(float(edges[i])), y), (self.px(float(edges[i + 1])), y)]
        if close:
            pts.append((self.px(float(edges[-1])), self.py(0.0)))
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        style = f"fill='{color}' fill-opacity='0.3'" if fill else "fill='none'"
        self.parts.append(f"<polyline points='{path}' {style} stroke='{color}' stroke-width='1.5'/>")

    def vline(self, x: float, y0: float, y1: float, label: str) -> None:
        self.parts.append(f"<line x1='{self.px(x):.1f}' x2='{self.px(x):.1f}' y1='{self.py(y0):.1f}' "
                          f"y2='{self.py(y1):.1f}' stroke='black' stroke-dasharray='4 3'/>"
                          f"<text x='{self.px(x) + 4:.1f}' y='{self.py((y0 + y1) / 2):.1f}'>{label}</text>")

    def svg(self) -> str:
        return f"<svg width='{W}' height='{H}' xmlns='http://www.w3.org/2000/svg'>{''.join(self.parts)}</svg>"


def _axis_frame(width: int, height: int, title: str, ytop: float) -> str:
    return (f"<text x='{width / 2}' y='14' text-anchor='middle'>{html.escape(title)}</text>"
            f"<line x1='{PAD}' y1='{height - PAD}' x2='{width - PAD}' y2='{height - PAD}' stroke='#555'/>"
            f"<line x1='{PAD}' y1='{PAD}' x2='{PAD}' y2='{height - PAD}' stroke='#555'/>"
            f"<text x='{PAD - 4}' y='{PAD + 4}' text-anchor='end'>{ytop:.3g}</text>"
            f"<text x='{PAD - 4}' y='{height - PAD}' text-anchor='end'>0</text>")


def _fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.4f}"
