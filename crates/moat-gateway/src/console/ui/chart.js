// Stacked bar charts drawn as SVG by hand: no library, nothing fetched from elsewhere.

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#2f6fde", "#e07b39", "#3aa776", "#b84fc9", "#d94c5a", "#2ea7b8", "#8a7d2a", "#6b6f80"];

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A colour per group, stable for the life of the page. */
const colours = new Map();
export function colourOf(group) {
  if (!colours.has(group)) colours.set(group, PALETTE[colours.size % PALETTE.length]);
  return colours.get(group);
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * Draws `points` ({start, group, [field]}) as bars stacked by group, one bar per bucket from `since`
 * in steps of `bucket` seconds. `format` labels the value axis.
 */
export function stackedBars(container, { points, since, bucket, field, format, title }) {
  container.replaceChildren();
  const now = Math.floor(Date.now() / 1000);
  const starts = [];
  for (let t = since; t <= now; t += bucket) starts.push(t);
  const groups = [...new Set(points.map((p) => p.group))];
  const totals = starts.map((s) => points.filter((p) => p.start === s).reduce((a, p) => a + p[field], 0));
  const max = niceMax(Math.max(0, ...totals));
  const W = 640, H = 240, left = 64, right = 12, top = 16, bottom = 36;
  const plotW = W - left - right, plotH = H - top - bottom;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart" });
  svg.append(el("title", {}, title));
  for (let i = 0; i <= 4; i++) {
    const y = top + plotH - (plotH * i) / 4;
    svg.append(el("line", { x1: left, x2: W - right, y1: y, y2: y, class: "grid" }));
    svg.append(el("text", { x: left - 6, y: y + 4, class: "axis", "text-anchor": "end" }, format((max * i) / 4)));
  }
  const slot = plotW / Math.max(1, starts.length);
  const barW = Math.max(2, slot * 0.7);
  starts.forEach((s, i) => {
    let y = top + plotH;
    for (const g of groups) {
      const p = points.find((q) => q.start === s && q.group === g);
      if (!p || p[field] <= 0) continue;
      const h = (p[field] / max) * plotH;
      y -= h;
      const rect = el("rect", { x: left + i * slot + (slot - barW) / 2, y, width: barW, height: Math.max(h, 0.5), fill: colourOf(g), "data-group": g });
      rect.append(el("title", {}, `${g}: ${format(p[field])}`));
      svg.append(rect);
    }
    const every = Math.ceil(starts.length / 8);
    if (i % every === 0) {
      const d = new Date(s * 1000);
      const label = bucket >= 86400 ? `${d.getUTCMonth() + 1}/${d.getUTCDate()}` : `${String(d.getUTCHours()).padStart(2, "0")}h`;
      svg.append(el("text", { x: left + i * slot + slot / 2, y: H - bottom + 16, class: "axis", "text-anchor": "middle" }, label));
    }
  });
  container.append(svg);
  const legend = document.createElement("ul");
  legend.className = "legend";
  for (const g of groups) {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = colourOf(g);
    li.append(sw, document.createTextNode(g));
    legend.append(li);
  }
  if (groups.length === 0) {
    const li = document.createElement("li");
    li.textContent = "No usage in this period yet.";
    legend.append(li);
  }
  container.append(legend);
}
