// Small inline SVG line charts drawn from /api/v1/devices/{id}/history.
// Samples are [unix_ms, value|null]; null (bad or stale) breaks the line,
// so a gap stays a gap.
const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

// chart returns an <svg> for one point's samples.
export function chart(name, hist, { width = 320, height = 90 } = {}) {
  const pad = { l: 44, r: 6, t: 14, b: 14 };
  const s = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "chart", role: "img", "aria-label": `history of ${name}` });
  const good = hist.samples.filter(x => x[1] !== null);
  const title = svg("text", { x: pad.l, y: 10, class: "chart-title" });
  title.textContent = `${name}${hist.unit ? " (" + hist.unit + ")" : ""}`;
  s.append(title);
  if (hist.samples.length < 2 || good.length === 0) {
    const t = svg("text", { x: pad.l, y: height / 2 + 4, class: "chart-empty" });
    t.textContent = good.length === 0 && hist.samples.length > 0 ? "no good samples (bad or stale)" : "not enough history yet";
    s.append(t);
    return s;
  }
  const t0 = hist.samples[0][0], t1 = hist.samples[hist.samples.length - 1][0];
  let lo = Math.min(...good.map(x => x[1])), hi = Math.max(...good.map(x => x[1]));
  if (lo === hi) { lo -= 1; hi += 1; }
  const X = t => pad.l + (width - pad.l - pad.r) * (t1 === t0 ? 1 : (t - t0) / (t1 - t0));
  const Y = v => pad.t + (height - pad.t - pad.b) * (1 - (v - lo) / (hi - lo));
  s.append(svg("rect", { x: pad.l, y: pad.t, width: width - pad.l - pad.r, height: height - pad.t - pad.b, class: "chart-bg" }));
  for (const [v, y] of [[hi, pad.t + 4], [lo, height - pad.b]]) {
    const l = svg("text", { x: pad.l - 4, y, class: "chart-axis", "text-anchor": "end" });
    l.textContent = fmtNum(v);
    s.append(l);
  }
  const span = svg("text", { x: width - pad.r, y: height - 2, class: "chart-axis", "text-anchor": "end" });
  span.textContent = `last ${fmtSpan((t1 - t0) / 1000)}`;
  s.append(span);
  // One polyline per run of good samples; a stale or bad sample ends it.
  let run = [];
  const flush = () => {
    if (run.length === 1) s.append(svg("circle", { cx: run[0][0], cy: run[0][1], r: 1.5, class: "chart-dot" }));
    if (run.length > 1) s.append(svg("polyline", { points: run.map(p => p.join(",")).join(" "), class: "chart-line" }));
    run = [];
  };
  for (const [t, v] of hist.samples) {
    if (v === null) {
      flush();
      s.append(svg("line", { x1: X(t), x2: X(t), y1: pad.t, y2: height - pad.b, class: "chart-gap" }));
    } else {
      run.push([X(t).toFixed(1), Y(v).toFixed(1)]);
    }
  }
  flush();
  return s;
}

export function fmtNum(v) {
  if (Math.abs(v) >= 1000) return v.toFixed(0);
  return String(Math.round(v * 100) / 100);
}

export function fmtSpan(s) {
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}
