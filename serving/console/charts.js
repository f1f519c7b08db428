// Inline SVG charts drawn by hand at the pixel width of their card (so 12 px text stays 12 px on a phone):
// a line plot for the trade-off curve, bars with interval whiskers, and day columns. Charts redraw on resize.
"use strict";

const Charts = {
  ns: "http://www.w3.org/2000/svg",
  _drawn: new Map(),

  el(name, attrs, text) {
    const node = document.createElementNS(Charts.ns, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  },

  // Remember how to draw an svg so a resize redraws it at the new width.
  _keep(svg, kind, args) {
    Charts._drawn.set(svg, [kind, args]);
    // Drawn while hidden (width 0) or before a layout change: redraw once the real width is known.
    if (!svg.dataset.observed && window.ResizeObserver) {
      svg.dataset.observed = "1";
      new ResizeObserver(() => {
        const w = Math.round(svg.getBoundingClientRect().width);
        if (w > 0 && String(w) !== svg.dataset.drawnWidth) Charts.redraw(svg);
      }).observe(svg);
    }
  },

  redraw(svg) {
    const kept = Charts._drawn.get(svg);
    if (kept) Charts[kept[0]](svg, ...kept[1]);
  },

  width(svg) {
    const w = svg.getBoundingClientRect().width;
    svg.dataset.drawnWidth = String(Math.round(w));
    return Math.max(260, Math.round(w || 520));
  },

  // Round tick positions covering [lo, hi] with about n steps, and the decimals their labels need.
  ticks(lo, hi, n) {
    if (!(hi > lo)) hi = lo + 1;
    const raw = (hi - lo) / n;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const out = [];
    for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + 1e-9 * step; t += step) out.push(Math.round(t / step) * step);
    const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9)) + (String(step / mag).includes(".") ? 1 : 0);
    return { values: out, decimals };
  },

  tickText(t, decimals) {
    if (Math.abs(t) < 1e-12) t = 0;
    return Math.abs(t) >= 10000 ? QX.num(t, 0) : QX.num(t, Math.min(decimals, 4));
  },

  // points: [{x, y, label, kind}] drawn as a line in x order; kind "current"/"proposed" get marked.
  // opts: xLabel, yLabel, minRelSpan (the y axis spans at least this share of the values, so a 0.3 % spread
  // is drawn flat instead of as a cliff).
  curve(svg, points, opts) {
    Charts._keep(svg, "curve", [points, opts]);
    svg.replaceChildren();
    const W = Charts.width(svg), H = Math.round(Math.min(320, Math.max(240, W * 0.6)));
    const L = 62, R = 18, T = 14, B = 46;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("height", H);
    const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
    const span = (a, b, rel) => {
      const mid = (a + b) / 2, need = Math.abs(mid) * (rel || 0);
      const half = Math.max((b - a) / 2 * 1.12, need / 2, 1e-9);
      return [mid - half, mid + half];
    };
    const [x0, x1] = span(Math.min(...xs), Math.max(...xs), opts.minRelSpan || 0.02);
    const [y0, y1] = span(Math.min(...ys), Math.max(...ys), opts.minRelSpan || 0.02);
    const sx = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
    const sy = (y) => H - B - (y - y0) / (y1 - y0) * (H - T - B);
    const yt = Charts.ticks(y0, y1, 4), xt = Charts.ticks(x0, x1, Math.max(3, Math.floor((W - L - R) / 90)));
    for (const t of yt.values) {
      if (t < y0 || t > y1) continue;
      svg.append(Charts.el("line", { x1: L, x2: W - R, y1: sy(t), y2: sy(t), class: "grid" }));
      svg.append(Charts.el("text", { x: L - 6, y: sy(t) + 4, "text-anchor": "end" }, Charts.tickText(t, yt.decimals)));
    }
    for (const t of xt.values) {
      if (t < x0 || t > x1) continue;
      svg.append(Charts.el("text", { x: sx(t), y: H - B + 16, "text-anchor": "middle" }, Charts.tickText(t, xt.decimals)));
    }
    svg.append(Charts.el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));
    svg.append(Charts.el("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }));
    svg.append(Charts.el("text", { x: (L + W - R) / 2, y: H - 8, "text-anchor": "middle" }, opts.xLabel));
    svg.append(Charts.el("text", { x: 13, y: (T + H - B) / 2, "text-anchor": "middle",
      transform: `rotate(-90 13 ${(T + H - B) / 2})` }, opts.yLabel));
    const line = points.filter((p) => !p.kind);  // in the order of the moving weight's values
    svg.append(Charts.el("polyline", { points: line.map((p) => `${sx(p.x)},${sy(p.y)}`).join(" "),
      fill: "none", stroke: "#2563eb", "stroke-width": 2 }));
    // Label a point only where its label does not run into the last one drawn nor into the 线上/试算 marks.
    let last = null;
    const marked = points.filter((q) => q.kind).map((q) => [sx(q.x), sy(q.y)]);
    for (const p of line) {
      const cx = sx(p.x), cy = sy(p.y);
      svg.append(Charts.el("circle", { cx, cy, r: 3.5, fill: "#2563eb", "data-value": p.label }));
      const lx = Math.min(cx + 5, W - R - 24), ly = Math.max(cy - 7, T + 10);
      const nearMark = marked.some(([mx, my]) => Math.abs(lx - mx) < 40 && Math.abs(ly - my) < 26);
      if (!nearMark && (last === null || Math.abs(lx - last[0]) > 34 || Math.abs(ly - last[1]) > 14)) {
        svg.append(Charts.el("text", { x: lx, y: ly, class: "small pt" }, p.label));
        last = [lx, ly];
      }
    }
    const marks = { current: ["#15803d", "线上"], proposed: ["#c2410c", "试算"] };
    for (const p of points.filter((q) => q.kind)) {
      const [color, name] = marks[p.kind];
      const cx = sx(p.x), cy = sy(p.y);
      svg.append(Charts.el("circle", { cx, cy, r: 7, fill: "none", stroke: color, "stroke-width": 2.5, "data-kind": p.kind }));
      const below = p.kind === "proposed";
      svg.append(Charts.el("text", { x: Math.min(cx + 9, W - R - 26), y: cy + (below ? 18 : -10), fill: color,
        style: `fill:${color};font-weight:600` }, name));
    }
  },

  // rows: [{label, mean, lo, hi}] as horizontal bars with 80 % interval whiskers.
  bars(svg, rows, opts) {
    Charts._keep(svg, "bars", [rows, opts]);
    svg.replaceChildren();
    const W = Charts.width(svg), rowH = 30, T = 6;
    const longest = Math.max(2, ...rows.map((r) => String(r.label).length));
    const L = Math.min(Math.round(W * 0.32), 14 + longest * 13), R = 52;
    const H = T + Math.max(1, rows.length) * rowH + 24;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("height", H);
    if (!rows.length) {
      svg.append(Charts.el("text", { x: 8, y: 24 }, opts.empty || "没有数据"));
      return;
    }
    const top = Math.max(1e-9, ...rows.map((r) => Math.max(r.hi, r.mean)));
    const sx = (v) => L + v / top * (W - L - R);
    rows.forEach((r, i) => {
      const y = T + i * rowH;
      svg.append(Charts.el("text", { x: L - 8, y: y + 19, "text-anchor": "end" }, r.label));
      svg.append(Charts.el("rect", { x: L, y: y + 6, width: Math.max(1, sx(r.mean) - L), height: rowH - 12,
        fill: opts.color || "#2563eb", rx: 3 }));
      svg.append(Charts.el("line", { x1: sx(r.lo), x2: sx(r.hi), y1: y + rowH / 2, y2: y + rowH / 2, stroke: "#102a43", "stroke-width": 1.5 }));
      for (const v of [r.lo, r.hi]) {
        svg.append(Charts.el("line", { x1: sx(v), x2: sx(v), y1: y + 9, y2: y + rowH - 9, stroke: "#102a43", "stroke-width": 1.5 }));
      }
      svg.append(Charts.el("text", { x: Math.min(Math.max(sx(r.hi), sx(r.mean)) + 6, W - R + 6), y: y + 19 },
        QX.num(r.mean, opts.digits)));
    });
    svg.append(Charts.el("text", { x: 4, y: H - 6, class: "small" }, opts.caption || ""));
  },

  // days: [{date, <series keys>...}], series: [[key, name, color]] as grouped columns per day.
  columns(svg, days, series, opts) {
    Charts._keep(svg, "columns", [days, series, opts]);
    svg.replaceChildren();
    const W = Charts.width(svg), H = 220, L = 44, R = 10, T = 12, B = 34;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("height", H);
    const top = Math.max(1, ...days.flatMap((d) => series.map(([k]) => d[k] || 0)));
    const yt = Charts.ticks(0, top, 4);
    const stepY = yt.values.length > 1 ? yt.values[1] - yt.values[0] : top;
    while (yt.values[yt.values.length - 1] < top) yt.values.push(yt.values[yt.values.length - 1] + stepY);
    const y1 = yt.values[yt.values.length - 1];
    const sy = (v) => H - B - v / y1 * (H - T - B);
    for (const t of yt.values) {
      svg.append(Charts.el("line", { x1: L, x2: W - R, y1: sy(t), y2: sy(t), class: "grid" }));
      svg.append(Charts.el("text", { x: L - 6, y: sy(t) + 4, "text-anchor": "end" }, QX.num(t, 0)));
    }
    const slot = (W - L - R) / Math.max(1, days.length), bw = Math.max(2, Math.min(16, (slot - 4) / series.length));
    const every = Math.max(1, Math.ceil(44 / slot));
    days.forEach((d, i) => {
      const x = L + i * slot + (slot - bw * series.length) / 2;
      series.forEach(([key, name, color], j) => {
        const v = d[key] || 0;
        const rect = Charts.el("rect", { x: x + j * bw, y: sy(v), width: bw - 1, height: Math.max(0, sy(0) - sy(v)), fill: color });
        rect.append(Charts.el("title", {}, `${d.date} ${name} ${v}`));
        svg.append(rect);
      });
      if ((days.length - 1 - i) % every === 0) {  // counted back from today, so today always has its label
        svg.append(Charts.el("text", { x: L + i * slot + slot / 2, y: H - B + 15, "text-anchor": "middle", class: "small" },
          d.date.slice(5).replace("-", "/")));
      }
    });
    svg.append(Charts.el("line", { x1: L, x2: W - R, y1: sy(0), y2: sy(0), class: "axis" }));
    if (opts && opts.caption) svg.append(Charts.el("text", { x: L, y: H - 4, class: "small" }, opts.caption));
  },

  redrawAll() {
    for (const [svg, [kind, args]] of Charts._drawn) {
      if (svg.isConnected && svg.getBoundingClientRect().width > 0) Charts[kind](svg, ...args);
    }
  },
};

window.addEventListener("resize", QX.debounce(() => Charts.redrawAll(), 150));
