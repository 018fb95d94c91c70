"""Server-rendered SVG line charts for training curves (no JavaScript chart library, no CDN)."""
from __future__ import annotations

from markupsafe import Markup, escape
from flask_babel import gettext as _

from app.i18n import format_number, format_percent, format_short

W, H = 480, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 30
TRAIN_COLOR, VAL_COLOR = "#3b5bdb", "#e8590c"


def _points(history: list[dict], key: str) -> list[tuple[float, float]]:
    return [(row["epoch"], float(row[key])) for row in history
            if row.get(key) is not None and row.get("epoch") is not None]


def _scale(lo: float, hi: float, value: float, size: float, flip: bool = False) -> float:
    span = (hi - lo) or 1.0
    frac = (value - lo) / span
    return (1 - frac) * size if flip else frac * size


def line_chart(title: str, series: list[tuple[str, str, list[tuple[float, float]]]],
               y_range: tuple[float, float] | None = None, percent: bool = False) -> Markup:
    """An SVG chart: one polyline (plus dots) per (label, colour, [(x, y)]) series."""
    all_points = [p for _, _, pts in series for p in pts]
    if not all_points:
        empty = escape(_("%(chart)s: no finished epoch yet.", chart=title))
        return Markup(f'<p class="muted chart-empty">{empty}</p>')
    xs = [x for x, _ in all_points]
    x_lo, x_hi = min(xs), max(max(xs), min(xs) + 1)
    if y_range is None:
        ys = [y for _, y in all_points]
        y_range = (0.0, max(ys) * 1.1 or 1.0)
    y_lo, y_hi = y_range
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
             f'preserveAspectRatio="xMidYMid meet"><title>{escape(title)}</title>']
    for i in range(5):  # horizontal grid with y labels
        value = y_lo + (y_hi - y_lo) * i / 4
        y = TOP + _scale(y_lo, y_hi, value, ph, flip=True)
        text = format_percent(value) if percent else _tick(value)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{text}</text>')
    for x_value in sorted({x_lo, x_hi, round((x_lo + x_hi) / 2)}):
        x, tick = LEFT + _scale(x_lo, x_hi, x_value, pw), format_number(x_value)
        parts.append(f'<text class="tick" x="{x:.1f}" y="{H - 12}" text-anchor="middle">{tick}</text>')
    axis = escape(_("epoch"))  # outside the f-string: the extractor does not read inside one
    parts.append(f'<text class="axis" x="{W - RIGHT}" y="{H - 1}" text-anchor="end">{axis}</text>')
    for label, color, pts in series:
        coords = [(LEFT + _scale(x_lo, x_hi, x, pw), TOP + _scale(y_lo, y_hi, min(max(y, y_lo), y_hi), ph, True))
                  for x, y in pts]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}">'
                         f'<title>{escape(label)}</title></polyline>')
        if len(coords) <= 40:
            parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>' for x, y in coords)
    parts.append("</svg>")
    legend = "".join(f'<span class="legend-item"><i style="background:{c}"></i>{escape(label)}</span>'
                     for label, c, pts in series if pts)
    return Markup(f'<figure class="chart-box"><figcaption>{escape(title)}</figcaption>{"".join(parts)}'
                  f'<div class="legend">{legend}</div></figure>')


def _tick(value: float) -> str:
    """A loss axis label: two significant digits, the locale's decimal sign (0.41 / 0,41)."""
    return format_short(float(f"{value:.2g}"))


def loss_chart(history: list[dict]) -> Markup:
    """Training and validation loss per epoch (lower is better)."""
    return line_chart(_("Loss (lower is better)"), [
        (_("Training"), TRAIN_COLOR, _points(history, "train_loss")),
        (_("Validation"), VAL_COLOR, _points(history, "val_loss")),
    ])


def accuracy_chart(history: list[dict]) -> Markup:
    """Training and validation accuracy per epoch, 0-100 %."""
    return line_chart(_("Accuracy (higher is better)"), [
        (_("Training"), TRAIN_COLOR, _points(history, "train_acc")),
        (_("Validation"), VAL_COLOR, _points(history, "val_acc")),
    ], y_range=(0.0, 1.0), percent=True)
