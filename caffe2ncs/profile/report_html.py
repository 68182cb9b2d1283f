"""The self-contained HTML report of ``caffe2ncs profile --html``: a summary, the
network drawn as SVG (nodes coloured by time, with a legend and a summary box,
like mvNCProfile's Graphviz picture), a bar chart of time per layer and the
table.  Inline CSS and SVG only: no script, no external resource."""

from __future__ import annotations

import math
from html import escape

from .result import Profile
from .svg import Node, render

#: Sequential colour scale (ColorBrewer YlOrRd, 6 classes), light = fast.
PALETTE = ("#ffffcc", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026")
INPUT_FILL = "#dbeafe"


def _hex(c: str) -> tuple[int, int, int]:
    return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)


def colour(fraction: float) -> str:
    """The palette colour at ``fraction`` in [0, 1] (linear interpolation)."""
    f = min(max(fraction, 0.0), 1.0) * (len(PALETTE) - 1)
    i = min(int(f), len(PALETTE) - 2)
    t = f - i
    a, b = _hex(PALETTE[i]), _hex(PALETTE[i + 1])
    rgb = (round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def text_colour(fill: str) -> str:
    r, g, b = _hex(fill)
    return "#ffffff" if 0.299 * r + 0.587 * g + 0.114 * b < 140 else "#1f2937"


def time_fraction(ms: float, max_ms: float) -> float:
    """Square-root scale: most layers are short, and a linear scale would leave
    them all the same pale colour."""
    return math.sqrt(ms / max_ms) if max_ms > 0 else 0.0


def _fmt_ms(ms: float) -> str:
    if ms == 0:
        return "0"
    return f"{ms:.2f}" if ms >= 0.1 else f"{ms:.3f}"


# --------------------------------------------------------------------------- pieces


def _mode_text(p: Profile) -> str:
    return ("measured on a Neural Compute Stick" if p.mode == "ncs"
            else "predicted by the caffe2ncs cost model (no stick used)")


def _legend_and_summary(p: Profile, max_ms: float) -> tuple[str, float]:
    """SVG for the legend (colour scale) and the summary box; returns (markup, height)."""
    stops = "".join(f'<stop offset="{i / (len(PALETTE) - 1):.3f}" stop-color="{c}"/>'
                    for i, c in enumerate(PALETTE))
    ticks = []
    for frac_ms in (0.0, 0.25, 1.0):
        ms = frac_ms * max_ms
        x = 20 + 220 * time_fraction(ms, max_ms)
        ticks.append(f'<line x1="{x:.1f}" y1="58" x2="{x:.1f}" y2="63" stroke="#374151"/>'
                     f'<text x="{x:.1f}" y="76" class="tick">{_fmt_ms(ms)}</text>')
    legend = (
        '<g class="legend" transform="translate(20,16)">'
        '<rect width="260" height="92" rx="8" class="box"/>'
        '<text x="20" y="24" class="boxtitle">Legend: time per layer (ms)</text>'
        f'<defs><linearGradient id="scale">{stops}</linearGradient></defs>'
        '<rect x="20" y="36" width="220" height="22" fill="url(#scale)" stroke="#9ca3af"/>'
        + "".join(ticks) +
        "</g>")
    measured = p.mode == "ncs"
    lines = [
        f"{p.shaves} SHAVE processor{'s' if p.shaves != 1 else ''}",
        f"Inference time {p.total_ms:.2f} ms ({'measured' if measured else 'predicted'})",
        f"Bandwidth {p.bandwidth_mb_s:.1f} MB/sec",
        f"{p.total_mflops:.1f} MFLOPs in {len(p.rows)} layers",
        f"This network is {p.bound} bound (model)",
    ]
    body = "".join(f'<text x="16" y="{48 + 18 * i}" class="boxline">{escape(t)}</text>'
                   for i, t in enumerate(lines))
    summary = ('<g class="summary" transform="translate(300,16)">'
               f'<rect width="300" height="{40 + 18 * len(lines)}" rx="8" class="box"/>'
               '<text x="16" y="24" class="boxtitle">Summary</text>' + body + "</g>")
    return legend + summary, 40 + 18 * len(lines) + 32


def graph_svg(p: Profile) -> str:
    max_ms = max((r.time_ms for r in p.rows), default=0.0)
    nodes = []
    dims = "x".join(str(d) for d in p.input_dims) if p.input_dims else ""
    nodes.append(Node(-1, "input", f"{dims} (W x H x C)" if dims else "", INPUT_FILL, "#1e3a8a",
                      "network input" + (f": {dims} (W x H x C)" if dims else ""),
                      "node input"))
    for r in p.rows:
        fill = colour(time_fraction(r.time_ms, max_ms))
        tip = (f"#{r.index} {r.name}\n{r.type}\n{r.mflops:.3f} MFLOPs\n"
               f"{r.bandwidth_mb_s:.1f} MB/s\n{r.time_ms:.3f} ms"
               + (f" (predicted {r.predicted_ms:.3f} ms)" if p.mode == "ncs" else "")
               + f"\n{r.bound} bound (model)"
               + (f"\nstages: {', '.join(s.name for s in r.stages)}" if len(r.stages) > 1 else ""))
        nodes.append(Node(r.index, r.name, f"{r.type} \u00b7 {_fmt_ms(r.time_ms)} ms", fill,
                          text_colour(fill), tip))
    edges = _with_junctions(p.edges, nodes)
    extra, top = _legend_and_summary(p, max_ms)
    return render(nodes, edges, top=top, min_width=640, extra=extra,
                  title=f"network graph of {p.graph_name or p.source}")


def _with_junctions(edges: list[tuple[int, int]], nodes: list[Node]) -> list[tuple[int, int]]:
    """Replace each complete fan-in/fan-out -- several layers all read by the
    same several layers, which is what an implicit concat looks like -- by a
    small "concat" junction, so that 4 branches feeding 4 readers draw as 8
    edges instead of 16.  Junction ids are -2, -3, ...; ``nodes`` gets them."""
    sources: dict[int, list[int]] = {}
    for a, b in edges:
        sources.setdefault(b, []).append(a)
    groups: dict[tuple[int, ...], list[int]] = {}
    for b, srcs in sources.items():
        if len(srcs) >= 2:
            groups.setdefault(tuple(sorted(srcs)), []).append(b)
    replaced: dict[tuple[int, int], int] = {}
    order = {n.id: i for i, n in enumerate(nodes)}
    new_nodes: list[tuple[int, Node]] = []
    for srcs, targets in groups.items():
        if len(targets) < 2:
            continue
        jid = -2 - len(new_nodes)
        tip = f"concat of {len(srcs)} layers, read by {len(targets)} layers"
        new_nodes.append((max(order[s] for s in srcs), Node(jid, "concat", "", "#e5e7eb",
                                                           "#374151", tip, "junction",
                                                           width=64)))
        for t in targets:
            for s in srcs:
                replaced[(s, t)] = jid
    if not new_nodes:
        return edges
    out: list[tuple[int, int]] = []
    seen = set()
    for a, b in edges:
        pair = [(a, replaced[(a, b)]), (replaced[(a, b)], b)] if (a, b) in replaced else [(a, b)]
        for e in pair:
            if e not in seen:
                seen.add(e)
                out.append(e)
    # Keep a topological order: each junction right after the last of its sources.
    for after, node in sorted(new_nodes, key=lambda t: -t[0]):
        nodes.insert(after + 1, node)
    return out


def bar_chart_svg(p: Profile) -> str:
    """Horizontal bars, one per layer, longest first."""
    rows = sorted(p.rows, key=lambda r: -r.time_ms)
    max_ms = max((r.time_ms for r in rows), default=0.0) or 1.0
    label_w, bar_w, row_h = 230, 460, 18
    width = label_w + bar_w + 90
    height = row_h * len(rows) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="bars" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="time per layer">']
    for i, r in enumerate(rows):
        y = 10 + i * row_h
        w = max(1.0, bar_w * r.time_ms / max_ms)
        fill = colour(time_fraction(r.time_ms, max_ms))
        name = r.name if len(r.name) <= 32 else r.name[:31] + "\u2026"
        out.append(
            f'<g class="bar"><title>{escape(r.name)}: {r.time_ms:.3f} ms</title>'
            f'<text x="{label_w - 8}" y="{y + 13}" class="barlabel">{escape(name)}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 4}" '
            f'fill="{fill}" stroke="#d97706" stroke-width="0.5"/>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 13}" class="barvalue">'
            f"{_fmt_ms(r.time_ms)} ms</text></g>")
    out.append("</svg>")
    return "\n".join(out)


def table_html(p: Profile) -> str:
    measured = p.mode == "ncs"
    total = p.total_ms or 1.0
    head = ("<tr><th>#</th><th>Name</th><th>Type</th><th>MFLOPs</th>"
            "<th>Bandwidth MB/s</th><th>time (ms)</th>"
            + ("<th>predicted (ms)</th>" if measured else "")
            + "<th>share</th><th>bound (model)</th></tr>")
    body = []
    for r in p.rows:
        body.append(
            f"<tr><td>{r.index}</td><td class=\"name\">{escape(r.name)}</td>"
            f"<td>{escape(r.type)}</td><td>{r.mflops:.3f}</td>"
            f"<td>{r.bandwidth_mb_s:.2f}</td><td>{r.time_ms:.2f}</td>"
            + (f"<td>{r.predicted_ms:.2f}</td>" if measured else "")
            + f"<td>{100 * r.time_ms / total:.1f} %</td><td>{r.bound}</td></tr>")
    foot = (f"<tr><td></td><td>Total inference time</td><td></td>"
            f"<td>{p.total_mflops:.3f}</td><td></td><td>{p.total_ms:.2f}</td>"
            + (f"<td>{p.predicted_total_ms:.2f}</td>" if measured else "")
            + "<td>100 %</td><td></td></tr>")
    return (f'<table class="profile"><thead>{head}</thead><tbody>{"".join(body)}</tbody>'
            f"<tfoot>{foot}</tfoot></table>")


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 0; color: #1f2937; background: #f8fafc; }
header { background: #1e293b; color: #f8fafc; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; }
header p { margin: 0; color: #cbd5e1; font-size: 14px; }
main { padding: 18px 28px 40px; }
section { background: #ffffff; border: 1px solid #e2e8f0; border-radius: 10px;
          padding: 14px 18px; margin-bottom: 20px; }
h2 { font-size: 17px; margin: 0 0 10px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 20px; }
.card { background: #ffffff; border: 1px solid #e2e8f0; border-radius: 10px;
        padding: 10px 16px; min-width: 150px; }
.card .v { font-size: 22px; font-weight: 600; }
.card .k { font-size: 12px; color: #64748b; text-transform: uppercase; letter-spacing: .04em; }
.scroll { overflow: auto; }
svg.graph .edge { fill: none; stroke: #9ca3af; stroke-width: 1.3; }
svg.graph .node rect { stroke: #92400e; stroke-width: 1; }
svg.graph .node.input rect { stroke: #1e40af; }
svg.graph .node text { text-anchor: middle; font-size: 12px; }
svg.graph .node text.label { font-weight: 600; }
svg.graph .node text.sub { font-size: 10.5px; }
svg .box { fill: #ffffff; stroke: #94a3b8; }
svg .boxtitle { font-weight: 600; font-size: 13px; }
svg .boxline { font-size: 12.5px; }
svg .tick { font-size: 11px; text-anchor: middle; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
svg .box + text, svg .legend text, svg .summary text, svg.bars text { fill: #1f2937; }
svg.graph .junction rect { stroke: #6b7280; stroke-dasharray: 3 2; }
svg.graph .junction text { text-anchor: middle; font-weight: 400; font-size: 11px; }
svg.bars .barlabel { text-anchor: end; font-size: 11.5px; }
svg.bars .barvalue { font-size: 11px; fill: #475569; }
table.profile { border-collapse: collapse; font-size: 13px; width: 100%; }
table.profile th, table.profile td { padding: 4px 10px; border-bottom: 1px solid #e2e8f0;
                                     text-align: right; white-space: nowrap; }
table.profile th { background: #f1f5f9; position: sticky; top: 0; }
table.profile td.name, table.profile th:nth-child(2), table.profile td:nth-child(3),
table.profile th:nth-child(3) { text-align: left; }
table.profile tbody tr:nth-child(even) { background: #f8fafc; }
table.profile tfoot td { font-weight: 600; border-top: 2px solid #94a3b8; }
.note { color: #64748b; font-size: 12.5px; }
"""


def render_report(p: Profile, model: dict | None = None) -> str:
    """The whole page."""
    title = f"caffe2ncs profile: {p.graph_name or p.source}"
    cards = [("inference time", f"{p.total_ms:.2f} ms"), ("SHAVEs", str(p.shaves)),
             ("MFLOPs", f"{p.total_mflops:.1f}"), ("bandwidth", f"{p.bandwidth_mb_s:.0f} MB/s"),
             ("layers", str(len(p.rows)))]
    if p.mode == "ncs":
        cards.insert(1, ("predicted", f"{p.predicted_total_ms:.2f} ms"))
    cards_html = "".join(f'<div class="card"><div class="k">{escape(k)}</div>'
                         f'<div class="v">{escape(v)}</div></div>' for k, v in cards)
    model_note = ""
    if p.mode == "model":
        model_note = (
            '<p class="note">Times are predictions of a roofline-style model calibrated on '
            "the vendor profiler's published GoogLeNet table (see docs/profile.md); "
            "the bandwidth column uses mvNCProfile's own formula so that it compares "
            "one-to-one with it.</p>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header><h1>{escape(title)}</h1>
<p>{escape(p.source)} &middot; {escape(_mode_text(p))} &middot; NCS1 (Myriad 2)</p></header>
<main>
<div class="cards">{cards_html}</div>
<section id="graph"><h2>Network graph</h2>
<div class="scroll">{graph_svg(p)}</div></section>
<section id="bars"><h2>Time per layer</h2>
<div class="scroll">{bar_chart_svg(p)}</div></section>
<section id="table"><h2>Detailed per layer profile</h2>{model_note}
<div class="scroll">{table_html(p)}</div></section>
</main>
</body>
</html>
"""


def write_report(p: Profile, path, model: dict | None = None) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_report(p, model))
