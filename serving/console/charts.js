// Inline SVG charts drawn by hand: a line/scatter plot for the trade-off curve and bars with interval whiskers.
"use strict";

const Charts = {
  ns: "http://www.w3.org/2000/svg",

  el(name, attrs, text) {
    const node = document.createElementNS(Charts.ns, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  },

  ticks(lo, hi, n) {
    if (hi <= lo) hi = lo + 1;
    const raw = (hi - lo) / n;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const out = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(t);
    return out;
  },

  // points: [{x, y, label, kind}] drawn as a line in x order; kind "current"/"proposed" get marked.
  curve(svg, points, opts) {
    svg.replaceChildren();
    const W = 520, H = 300, L = 64, R = 16, T = 16, B = 44;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
    const pad = (a, b) => { const d = (b - a) || Math.abs(a) || 1; return [a - 0.08 * d, b + 0.08 * d]; };
    const [x0, x1] = pad(Math.min(...xs), Math.max(...xs));
    const [y0, y1] = pad(Math.min(...ys), Math.max(...ys));
    const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
    const sy = (y) => H - B - (y - y0) / (y1 - y0) * (H - T - B);
    for (const t of Charts.ticks(y0, y1, 5)) {
      svg.append(Charts.el("line", { x1: L, x2: W - R, y1: sy(t), y2: sy(t), class: "grid" }));
      svg.append(Charts.el("text", { x: L - 6, y: sy(t) + 4, "text-anchor": "end" }, QX.num(t)));
    }
    for (const t of Charts.ticks(x0, x1, 5)) {
      svg.append(Charts.el("text", { x: sx(t), y: H - B + 16, "text-anchor": "middle" }, QX.num(t)));
    }
    svg.append(Charts.el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));
    svg.append(Charts.el("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }));
    svg.append(Charts.el("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle" }, opts.xLabel));
    svg.append(Charts.el("text", { x: 14, y: (T + H - B) / 2, "text-anchor": "middle",
      transform: `rotate(-90 14 ${(T + H - B) / 2})` }, opts.yLabel));
    const line = points.filter((p) => !p.kind);  // in the order of the moving weight's values
    svg.append(Charts.el("polyline", { points: line.map((p) => `${sx(p.x)},${sy(p.y)}`).join(" "),
      fill: "none", stroke: "#2563eb", "stroke-width": 2 }));
    for (const p of line) {
      svg.append(Charts.el("circle", { cx: sx(p.x), cy: sy(p.y), r: 3.5, fill: "#2563eb" }));
      svg.append(Charts.el("text", { x: sx(p.x) + 5, y: sy(p.y) - 6, class: "pt" }, p.label));
    }
    const marks = { current: ["#616e7c", "当前"], proposed: ["#c2410c", "试算"] };
    for (const p of points.filter((q) => q.kind)) {
      const [color, name] = marks[p.kind];
      svg.append(Charts.el("circle", { cx: sx(p.x), cy: sy(p.y), r: 7, fill: "none", stroke: color, "stroke-width": 2.5,
        "data-kind": p.kind }));
      svg.append(Charts.el("text", { x: sx(p.x) + 9, y: sy(p.y) + 16, fill: color }, name));
    }
  },

  // rows: [{label, mean, lo, hi}] as horizontal bars with 80 % interval whiskers.
  bars(svg, rows, opts) {
    svg.replaceChildren();
    const W = 520, rowH = 28, L = 96, R = 70, T = 8;
    const H = T + rows.length * rowH + 26;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    const top = Math.max(1e-9, ...rows.map((r) => Math.max(r.hi, r.mean)));
    const sx = (v) => L + v / top * (W - L - R);
    rows.forEach((r, i) => {
      const y = T + i * rowH;
      svg.append(Charts.el("text", { x: L - 8, y: y + 17, "text-anchor": "end" }, r.label));
      svg.append(Charts.el("rect", { x: L, y: y + 5, width: Math.max(1, sx(r.mean) - L), height: rowH - 10,
        fill: opts.color || "#2563eb", rx: 3 }));
      svg.append(Charts.el("line", { x1: sx(r.lo), x2: sx(r.hi), y1: y + rowH / 2, y2: y + rowH / 2, stroke: "#102a43", "stroke-width": 1.5 }));
      for (const v of [r.lo, r.hi]) {
        svg.append(Charts.el("line", { x1: sx(v), x2: sx(v), y1: y + 8, y2: y + rowH - 8, stroke: "#102a43", "stroke-width": 1.5 }));
      }
      svg.append(Charts.el("text", { x: Math.max(sx(r.hi), sx(r.mean)) + 6, y: y + 17 }, QX.num(r.mean)));
    });
    svg.append(Charts.el("text", { x: L, y: H - 6 }, opts.caption || ""));
  },
};
