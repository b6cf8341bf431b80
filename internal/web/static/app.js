"use strict";
// Renders /api/v1/state. Bad and stale points show their reason instead of
// passing for a healthy value.
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) e.append(k);
  return e;
};

function fmt(p) {
  if (p.value === null || p.value === undefined) return "—";
  if (typeof p.value === "number") {
    const v = Math.round(p.value * 1000) / 1000;
    return p.unit ? `${v} ${p.unit}` : String(v);
  }
  return String(p.value);
}

function render(doc) {
  document.getElementById("where").textContent = `${doc.site} / ${doc.gateway}`;
  const main = document.getElementById("devices");
  main.replaceChildren();
  for (const d of doc.devices) {
    const rows = d.points.flatMap(p => {
      const value = p.quality === "bad" ? "BAD" : (p.quality === "stale" ? `stale (${fmt(p)})` : fmt(p));
      const row = el("tr", { class: p.quality, "data-point": p.name }, el("td", {}, p.name), el("td", { class: "v" }, value));
      if (p.quality === "good") return [row];
      // The reason goes on its own line so a bad value is never read alone.
      return [row, el("tr", { class: p.quality + " reason" }, el("td", { class: "q", colspan: "2" }, `${p.quality}: ${p.reason || ""}`))];
    });
    const polls = (d.polls || []).map(s => `${s.group}: ${s.cycles} polls, ${s.overruns} overruns, last ${(s.last_duration_ns / 1e6).toFixed(0)} ms`).join(" · ");
    main.append(el("section", { class: d.health, "data-device": d.id },
      el("h2", {}, d.id, el("small", {}, `${d.profile}${d.firmware ? " fw " + d.firmware : ""} · ${d.health}`)),
      el("table", {}, ...rows),
      el("div", { class: "polls" }, polls)));
  }
}

async function tick() {
  const status = document.getElementById("status");
  try {
    const r = await fetch("api/v1/state", { cache: "no-store" });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    render(await r.json());
    status.textContent = "live · " + new Date().toLocaleTimeString();
    status.className = "";
  } catch (e) {
    status.textContent = "gateway unreachable: " + e.message;
    status.className = "err";
  }
}
tick();
setInterval(tick, 1000);
