"""The Space's chart as a self-contained SVG: predicted accuracy (or score) against parameters on a log scale with
the Pareto front highlighted, or horizontal bars when the zoo records no sizes. Plain strings, no plotting library:
the chart is rebuilt from the same records as the table on every click, and is empty on an error."""

from __future__ import annotations

import math
from html import escape
from typing import Any

WIDTH, LEFT, RIGHT, TOP, BOTTOM = 480, 72, 16, 50, 48  # TOP holds the legend, above the plot
FRONT, OTHER, WHISKER = "#e8590c", "#4c6ef5", "#adb5bd"


def chart_svg(models: list[dict[str, Any]], front: set[str]) -> str:
    """SVG for ranked models (``Ranking.to_dict()["models"]``); ``front``: ids on the Pareto front.

    A scatter on a log parameter axis when every model's size is known, else horizontal bars, best on top.
    """
    if not models:
        return ""
    sized = all(m.get("num_parameters") for m in models)
    body = _scatter(models, front) if sized else _bars(models)
    ids = escape(" ".join(m["model_id"] for m in models), quote=True)
    return f'<div class="hf-spider-chart" data-models="{ids}" style="width:100%">{body}</div>'


def _quality(models: list[dict[str, Any]]) -> tuple[list[float], str]:
    if all(m.get("predicted_accuracy") is not None for m in models):
        return [100 * m["predicted_accuracy"] for m in models], "predicted accuracy (%)"
    return [m["score"] for m in models], "fitness score (higher ranks first)"


def _short(model_id: str) -> str:
    return model_id.rsplit("/", 1)[-1]


def _size_label(n: float) -> str:
    for suffix, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:g}{suffix}"
    return f"{n:g}"


def _scatter(models: list[dict[str, Any]], front: set[str]) -> str:
    height = 380
    y_values, y_title = _quality(models)
    logs = [math.log10(m["num_parameters"]) for m in models]
    x0, x1 = min(logs) - 0.15, max(logs) + 0.15
    lows, highs = list(y_values), list(y_values)
    for i, m in enumerate(models):
        if m.get("predicted_accuracy_interval") and m.get("predicted_accuracy") is not None:
            lows[i], highs[i] = (100 * v for v in m["predicted_accuracy_interval"])
    pad = 0.08 * ((max(highs) - min(lows)) or 1.0)
    y0, y1 = min(lows) - pad, max(highs) + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM

    def sx(v: float) -> float:
        return LEFT + (v - x0) / (x1 - x0) * plot_w

    def sy(v: float) -> float:
        return TOP + (y1 - v) / (y1 - y0) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" '
             f'aria-label="{escape(y_title)} against parameters" style="display:block;font:14px sans-serif">',
             f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ced4da"/>']
    for decade in range(math.floor(x0), math.ceil(x1) + 1):  # ticks at 1, 2 and 5 x each power of ten
        for mult in (1, 2, 5):
            v = decade + math.log10(mult)
            if x0 <= v <= x1:
                x = sx(v)
                parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_h}" stroke="#f1f3f5"/>'
                             f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" fill="#495057">'
                             f'{_size_label(10 ** v)}</text>')
    for k in range(6):
        v = y0 + k * (y1 - y0) / 5
        y = sy(v)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#f1f3f5"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#495057">{v:.3g}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{height - 10}" text-anchor="middle" fill="#212529">'
                 'parameters (log scale)</text>'
                 f'<text transform="translate(15 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle" '
                 f'fill="#212529">{escape(y_title)}</text>')
    on_front = sorted((i for i, m in enumerate(models) if m["model_id"] in front), key=lambda i: logs[i])
    if len(on_front) > 1:
        path = " ".join(f"{sx(logs[i]):.1f},{sy(y_values[i]):.1f}" for i in on_front)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{FRONT}" stroke-width="2" '
                     'stroke-dasharray="5 3"/>')
    for i, m in enumerate(models):
        x, y = sx(logs[i]), sy(y_values[i])
        if lows[i] != highs[i]:
            parts.append(f'<line x1="{x:.1f}" y1="{sy(lows[i]):.1f}" x2="{x:.1f}" y2="{sy(highs[i]):.1f}" '
                         f'stroke="{WHISKER}" stroke-width="2"/>')
        colour = FRONT if m["model_id"] in front else OTHER
        tip = escape(f"#{m['rank']} {m['model_id']}: {y_values[i]:.3g}, {_size_label(m['num_parameters'])} "
                     "parameters")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="{colour}" fill-opacity="0.85" '
                     f'stroke="white"><title>{tip}</title></circle>')
    for n, i in enumerate(on_front):  # labels for the front only, alternating above and below to avoid overlap
        x, y = sx(logs[i]), sy(y_values[i]) + (-10 if n % 2 == 0 else 18)
        anchor = "end" if x > LEFT + 0.75 * plot_w else "start"
        parts.append(f'<text x="{x + (-8 if anchor == "end" else 8):.1f}" y="{y:.1f}" text-anchor="{anchor}" '
                     f'fill="#212529">#{models[i]["rank"]} {escape(_short(models[i]["model_id"]))}</text>')
    parts.append(f'<circle cx="{LEFT + 6}" cy="12" r="6" fill="{FRONT}"/>'
                 f'<text x="{LEFT + 18}" y="16" fill="#212529">Pareto front: none both better and smaller'
                 '</text>'
                 f'<circle cx="{LEFT + 6}" cy="32" r="6" fill="{OTHER}"/>'
                 f'<text x="{LEFT + 18}" y="36" fill="#212529">other ranked models (hover for names)</text></svg>')
    return "".join(parts)


def _bars(models: list[dict[str, Any]]) -> str:
    values, title = _quality(models)
    row, label_w = 26, min(270, 8 + 7 * max(len(m["model_id"]) for m in models))
    height = 20 + row * len(models) + 56
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    base = lo - 0.15 * span  # the shortest bar still shows; only the order and the gaps carry meaning
    plot_w = WIDTH - label_w - 56
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
             f'role="img" aria-label="{escape(title)}" style="display:block;font:13px sans-serif">']
    for i, (m, v) in enumerate(zip(models, values)):
        y = 20 + i * row
        w = (v - base) / (hi - base) * plot_w
        name = m["model_id"] if len(m["model_id"]) * 7 < label_w else "…" + m["model_id"][-(label_w // 7 - 1):]
        parts.append(f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end" fill="#212529">'
                     f'#{m["rank"]} {escape(name)}<title>{escape(m["model_id"])}</title></text>'
                     f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row - 8}" fill="{OTHER}"/>'
                     f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" fill="#495057">{v:.4g}</text>')
    parts.append(f'<text x="{WIDTH / 2}" y="{height - 28}" text-anchor="middle" fill="#212529">{escape(title)}</text>'
                 f'<text x="{WIDTH / 2}" y="{height - 10}" text-anchor="middle" fill="#495057">no size axis: the zoo '
                 'records no model sizes</text></svg>')
    return "".join(parts)
