"""Draw a network as SVG, top to bottom, without Graphviz.

Layout (a small Sugiyama-style layered layout):

1. **Layers by longest path**: the input is rank 0, every node one rank below
   its lowest predecessor.  Rows come in execution order, which is a
   topological order, so one pass does it.
2. **Dummy nodes**: an edge spanning several ranks becomes a chain of
   invisible points, one per rank, so that it can bend around the boxes.
3. **Ordering by barycentre**: within each rank, nodes are sorted by the mean
   position of their neighbours in the rank above (sweeping down) and below
   (sweeping up), a few times; the order with the fewest crossings is kept.
4. **Coordinates**: each rank in turn (passes down and up) is placed as close
   as the order and a minimum gap allow, in the least-squares sense, to the
   mean x of each node's neighbours in the rank just placed.
5. **Drawing**: boxes (``<g class="node">`` with a ``<title>`` tooltip),
   edges as smooth paths through their dummy points with an arrowhead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

#: Box size and spacing, px.
NODE_W = 176
NODE_H = 40
DUMMY_W = 12
H_GAP = 22
V_GAP = 40
MARGIN = 20


@dataclass
class Node:
    """One box: ``id`` is its key in the edge list."""

    id: int
    label: str
    sublabel: str = ""
    fill: str = "#ffffff"
    text: str = "#111111"
    tooltip: str = ""
    css_class: str = "node"
    #: Box width, px (a junction is narrower than a layer).
    width: float = 0.0

    @property
    def box_width(self) -> float:
        return self.width or NODE_W


@dataclass
class _Item:
    key: object  # a node id, or ("d", edge index, rank) for a dummy
    rank: int
    dummy: bool
    x: float = 0.0
    preds: list = field(default_factory=list)
    succs: list = field(default_factory=list)
    box: float = NODE_W

    @property
    def width(self) -> float:
        return DUMMY_W if self.dummy else self.box


@dataclass
class Layout:
    items: dict
    ranks: list[list]
    width: float
    height: float
    #: per edge: the points the path goes through
    paths: list[list[tuple[float, float]]]


def layout(nodes: list[Node], edges: list[tuple[int, int]]) -> Layout:
    """Compute positions for ``nodes`` (in a topological order) and ``edges``."""
    order = {n.id: i for i, n in enumerate(nodes)}
    edges = [(a, b) for a, b in edges if a in order and b in order and order[a] < order[b]]
    preds: dict[int, list[int]] = {n.id: [] for n in nodes}
    for a, b in edges:
        preds[b].append(a)
    rank: dict[int, int] = {}
    for n in nodes:
        rank[n.id] = 1 + max((rank[p] for p in preds[n.id]), default=-1)

    items: dict = {n.id: _Item(n.id, rank[n.id], False, box=n.box_width) for n in nodes}
    chains: list[list] = []
    for e, (a, b) in enumerate(edges):
        chain = [a]
        for r in range(rank[a] + 1, rank[b]):
            key = ("d", e, r)
            items[key] = _Item(key, r, True)
            chain.append(key)
        chain.append(b)
        for u, v in zip(chain, chain[1:], strict=False):
            items[u].succs.append(v)
            items[v].preds.append(u)
        chains.append(chain)

    nranks = 1 + max((it.rank for it in items.values()), default=0)
    ranks: list[list] = [[] for _ in range(nranks)]
    for key, it in items.items():  # insertion order: nodes first, in execution order
        ranks[it.rank].append(key)
    ranks = _order(ranks, items)
    _coordinates(ranks, items)

    min_x = min((items[k].x - items[k].width / 2 for r in ranks for k in r), default=0.0)
    for it in items.values():
        it.x += MARGIN - min_x
    width = max((items[k].x + items[k].width / 2 for r in ranks for k in r), default=0.0) + MARGIN
    height = nranks * (NODE_H + V_GAP) - V_GAP + 2 * MARGIN

    def y_of(r: int) -> float:
        return MARGIN + r * (NODE_H + V_GAP)

    paths = []
    for chain in chains:
        pts = [(items[chain[0]].x, y_of(items[chain[0]].rank) + NODE_H)]
        for key in chain[1:-1]:
            y = y_of(items[key].rank)
            pts.append((items[key].x, y))
            pts.append((items[key].x, y + NODE_H))
        pts.append((items[chain[-1]].x, y_of(items[chain[-1]].rank)))
        paths.append(pts)
    return Layout(items, ranks, width, height, paths)


def _positions(ranks):
    return {k: i for r in ranks for i, k in enumerate(r)}


def _crossings(ranks, items) -> int:
    pos = _positions(ranks)
    total = 0
    for r in ranks[:-1]:
        segs = sorted((pos[u], pos[v]) for u in r for v in items[u].succs)
        for i in range(len(segs)):
            for j in range(i + 1, len(segs)):
                if segs[i][0] < segs[j][0] and segs[i][1] > segs[j][1]:
                    total += 1
    return total


def _order(ranks, items, sweeps: int = 6):
    best = [list(r) for r in ranks]
    best_c = _crossings(best, items)
    cur = [list(r) for r in ranks]
    for s in range(sweeps):
        down = s % 2 == 0
        seq = range(1, len(cur)) if down else range(len(cur) - 2, -1, -1)
        for i in seq:
            ref = _positions([cur[i - 1] if down else cur[i + 1]])
            old = {k: j for j, k in enumerate(cur[i])}

            def bary(k, ref=ref, old=old, down=down):
                nb = items[k].preds if down else items[k].succs
                ps = [ref[n] for n in nb if n in ref]
                return (sum(ps) / len(ps), old[k]) if ps else (old[k], old[k])

            cur[i].sort(key=bary)
        c = _crossings(cur, items)
        if c < best_c:
            best, best_c = [list(r) for r in cur], c
    return best


def _coordinates(ranks, items, passes: int = 5) -> None:
    for r in ranks:  # initial: packed and centred on 0
        x = 0.0
        for k in r:
            items[k].x = x + items[k].width / 2
            x += items[k].width + H_GAP
        shift = (x - H_GAP) / 2
        for k in r:
            items[k].x -= shift
    for p in range(passes):
        down = p % 2 == 0
        seq = ranks[1:] if down else list(reversed(ranks[:-1]))
        for r in seq:
            want = []
            for k in r:
                nb = items[k].preds if down else items[k].succs
                xs = [items[n].x for n in nb]
                want.append(sum(xs) / len(xs) if xs else items[k].x)
            _place(r, items, want)


def _place(r, items, want) -> None:
    """Put the nodes of one rank as close to ``want`` as the order and the gaps
    allow, in the least-squares sense: left to right, a node overlapping the
    block before it joins that block, and a block sits at the mean of what its
    members want (pool-adjacent-violators)."""
    blocks: list[list] = []  # [first index, end index (excl.), sum of wants, count]
    offsets = []  # each node's offset from the left of its block
    for i in range(len(r)):
        blocks.append([i, i + 1, want[i], 1])
        offsets.append(0.0)
        while len(blocks) > 1:
            a, b = blocks[-2], blocks[-1]
            # left x of each block = mean(want - offset) over its members
            xa = a[2] / a[3]
            xb = b[2] / b[3]
            gap = (items[r[a[1] - 1]].width + items[r[b[0]]].width) / 2 + H_GAP
            end_a = xa + offsets[a[1] - 1]
            if xb >= end_a + gap:
                break
            shift = offsets[a[1] - 1] + gap  # offset of b's first node within a
            for j in range(b[0], b[1]):
                offsets[j] += shift
            a[2] += b[2] - shift * b[3]
            a[3] += b[3]
            a[1] = b[1]
            blocks.pop()
    for start, end, total, count in blocks:
        left = total / count
        for j in range(start, end):
            items[r[j]].x = left + offsets[j]


# --------------------------------------------------------------------------- drawing


def _path_d(pts: list[tuple[float, float]]) -> str:
    d = [f"M{pts[0][0]:.1f},{pts[0][1]:.1f}"]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        if abs(x1 - x0) < 0.5:
            d.append(f"L{x1:.1f},{y1:.1f}")
        else:
            my = (y0 + y1) / 2
            d.append(f"C{x0:.1f},{my:.1f} {x1:.1f},{my:.1f} {x1:.1f},{y1:.1f}")
    return " ".join(d)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def render(nodes: list[Node], edges: list[tuple[int, int]], *, top: float = 0.0,
           left: float = 0.0, min_width: float = 0.0, extra: str = "",
           title: str = "network graph") -> str:
    """An ``<svg>`` element drawing ``nodes`` and ``edges``.  The drawing starts
    ``top``/``left`` px in (room for ``extra``, SVG markup placed as is, e.g.
    a legend), and the picture is at least ``min_width`` wide."""
    lay = layout(nodes, edges)
    by_id = {n.id: n for n in nodes}
    width = max(lay.width + left, min_width)
    height = lay.height + top
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width:.0f}" '
           f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
           f'aria-label="{escape(title)}">',
           "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
           "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">"
           "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#6b7280\"/></marker></defs>",
           extra,
           f'<g transform="translate({left:.1f},{top:.1f})">',
           '<g class="edges">']
    for pts in lay.paths:
        out.append(f'<path class="edge" d="{_path_d(pts)}" marker-end="url(#arrow)"/>')
    out.append("</g>")
    for r_index, r in enumerate(lay.ranks):
        y = MARGIN + r_index * (NODE_H + V_GAP)
        for key in r:
            it = lay.items[key]
            if it.dummy:
                continue
            n = by_id[key]
            w = n.box_width
            x = it.x - w / 2
            ident = f"node-{n.id}" if n.id >= -1 else f"junction-{-n.id - 1}"
            out.append(f'<g class="{escape(n.css_class)}" id="{ident}" '
                       f'transform="translate({x:.1f},{y:.1f})">')
            out.append(f"<title>{escape(n.tooltip or n.label)}</title>")
            out.append(f'<rect width="{w:g}" height="{NODE_H}" rx="6" ry="6" '
                       f'style="fill:{n.fill}"/>')
            label_y = 16 if n.sublabel else NODE_H / 2 + 4
            chars = int(w / 6.8)
            out.append(f'<text x="{w / 2:g}" y="{label_y:g}" style="fill:{n.text}" '
                       f'class="label">{escape(_clip(n.label, chars))}</text>')
            if n.sublabel:
                out.append(f'<text x="{w / 2:g}" y="31" style="fill:{n.text}" class="sub">'
                           f"{escape(_clip(n.sublabel, int(w / 5.9)))}</text>")
            out.append("</g>")
    out.append("</g></svg>")
    return "\n".join(out)
