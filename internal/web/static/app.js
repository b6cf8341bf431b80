// The operator dashboard. It loads snapshots over the JSON API and keeps
// them current from the event stream (/api/v1/stream); after any gap in
// the stream it loads fresh snapshots rather than trusting what it has.
// It must stay readable during an incident: stale and bad values are
// shown as such and never as a number, every value has its age.
import { api, session, can, whoami, login, logout } from "./api.js";
import { chart } from "./chart.js";

const $ = id => document.getElementById(id);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === undefined || v === null) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k);
  return e;
};

const state = {
  devices: new Map(), // id -> device with points: Map(name -> point)
  order: [],
  groups: ["power", "battery", "cooling", "network", "fire", "other"],
  alerts: null,
  paths: null,
  demo: null,
  offset: 0, // server clock minus browser clock, ms
  selected: "",
  activity: [],
  lastHealth: new Map(),
};

// ---- time ----

const serverNow = () => Date.now() + state.offset;
function setServerNow(iso) {
  if (iso) state.offset = Date.parse(iso) - Date.now();
}
function ago(ms) {
  const s = Math.max(0, Math.round((serverNow() - ms) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
function timeEl(iso, cls = "age") {
  const ms = Date.parse(iso);
  return el("time", { class: cls, datetime: iso, "data-ms": String(ms), title: new Date(ms).toLocaleString() }, ago(ms));
}
function tickAges() {
  for (const t of document.querySelectorAll("time[data-ms]")) t.textContent = ago(Number(t.dataset.ms));
}

// ---- values ----

// fmtValue renders a point for people. A bad or stale point never shows
// its number: that number is not a reading of now.
function fmtValue(p, short = false) {
  if (p.quality === "bad") {
    const r = p.reason || "no reason given";
    // On a card the reason's detail (retries, next try) would drown the
    // value column; the detail view and the tooltip have it whole.
    return `bad (${short ? r.split(" (")[0] : r})`;
  }
  if (p.quality === "stale") return "stale";
  const v = p.value;
  if (v === null || v === undefined) return "—";
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (typeof v === "number") {
    const r = Math.abs(v) >= 100 ? Math.round(v * 10) / 10 : Math.round(v * 100) / 100;
    return p.unit ? `${r} ${p.unit}` : String(r);
  }
  return String(v);
}
const isAlarm = p => typeof p.value === "boolean" && p.value && /(^|\.)(alarm|fault|fire\d|action|on_battery|on_bypass|overload|input_bad|epo_tripped|released|predischarge)(\.|$)/.test(p.name);
function valueClass(p) {
  if (p.quality !== "good") return `v q-${p.quality}`;
  return isAlarm(p) ? "v alarm-on" : "v";
}

// Key values per overview group, the first found are shown on the card.
const KEYS = {
  power: ["ups.status.on_battery", "ups.status.online", "battery.charge", "battery.runtime", "ups.output.load", "pdu.power", "pdu.phase.current"],
  battery: ["bms.alarm.offgas", "bms.offgas_ppm", "bms.cell_temp_max", "bms.soc", "bms.alarm.cell_overtemp"],
  cooling: ["crac.alarm.unit_fault", "crac.supply_temp", "crac.return_temp", "crac.fan_speed", "crac.status"],
  fire: ["firepanel.alarm", "firepanel.state", "vesda.fire1", "vesda.obscuration", "vesda.level"],
  network: ["if.oper_status", "if.in_errors", "switch.sensor"],
};
function keyPoints(d) {
  const out = [];
  for (const n of KEYS[d.group] || []) if (d.points.has(n)) out.push(d.points.get(n));
  for (const p of d.points.values()) if (isAlarm(p) && !out.includes(p)) out.push(p);
  if (out.length === 0) out.push(...[...d.points.values()].filter(p => typeof p.value === "number").slice(0, 4));
  return out.slice(0, 7);
}

// ---- overview ----

function setDevices(doc) {
  setServerNow(doc.now);
  state.groups = doc.groups || state.groups;
  state.order = doc.devices.map(d => d.id);
  const old = state.devices;
  state.devices = new Map();
  for (const d of doc.devices) {
    d.points = new Map(d.points.map(p => [p.name, p]));
    const prev = old.get(d.id);
    if (prev && prev.health === d.health) d.healthChanged = prev.healthChanged;
    state.devices.set(d.id, d);
    noteHealth(d, old.size > 0);
  }
  $("where").textContent = `${doc.site} / ${doc.gateway}`;
  renderOverview();
  renderDetail();
}

function noteHealth(d, live) {
  const before = state.lastHealth.get(d.id);
  // Only a change seen by this page has a time: the API keeps no
  // history of device health, and a guess would mislead.
  if (before !== d.health) {
    if (live && before) {
      d.healthChanged = new Date(serverNow()).toISOString();
      addActivity(d.health === "good" ? "ok" : d.health, `${d.id}: ${before} → ${d.health}`);
    }
    state.lastHealth.set(d.id, d.health);
  }
}

function card(d) {
  const rows = keyPoints(d).map(p => el("tr", { "data-point": p.name, class: `q-${p.quality}` },
    el("td", { class: "n" }, p.name),
    el("td", { class: valueClass(p), title: p.reason || "" }, fmtValue(p, true)),
    el("td", { class: "t" }, timeEl(p.time))));
  const counts = [];
  if (d.stale) counts.push(`${d.stale} stale`);
  if (d.bad) counts.push(`${d.bad} bad`);
  const alarmed = [...d.points.values()].some(isAlarm);
  return el("article", { class: `card h-${d.health}${alarmed ? " alarmed" : ""}`, "data-device": d.id, tabindex: "0",
      onclick: () => select(d.id), onkeydown: e => { if (e.key === "Enter") select(d.id); } },
    el("h3", {}, el("span", { class: "id" }, d.id), el("span", { class: `badge h-${d.health}` }, d.health)),
    el("div", { class: "meta" }, [d.room, d.profile, d.firmware ? "fw " + d.firmware : ""].filter(Boolean).join(" · ")),
    el("table", {}, rows),
    el("div", { class: "foot" }, counts.join(", ") || `${d.good} points good`,
      d.healthChanged ? [` · ${d.health} since `, timeEl(d.healthChanged)] : null));
}

function renderOverview() {
  const by = $("groupby").value;
  const groups = new Map();
  const names = by === "group" ? state.groups : [...new Set(state.order.map(id => state.devices.get(id).room || "(no room)"))].sort();
  for (const g of names) groups.set(g, []);
  for (const id of state.order) {
    const d = state.devices.get(id);
    const key = by === "group" ? d.group : (d.room || "(no room)");
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(d);
  }
  const out = [];
  for (const [g, devs] of groups) {
    if (devs.length === 0) continue;
    out.push(el("section", { class: "group", "data-group": g }, el("h3", {}, g, el("small", {}, ` ${devs.length}`)),
      el("div", { class: "cards" }, devs.map(card))));
  }
  $("groups").replaceChildren(...out);
  const all = [...state.devices.values()];
  const n = h => all.filter(d => d.health === h).length;
  $("counts").textContent = `${all.length} devices · ${n("good")} good · ${n("degraded")} degraded · ${n("bad")} bad · ${n("unknown")} unknown`;
}

function applyPoints(ev) {
  setServerNow(ev.now);
  for (const u of ev.devices) {
    const d = state.devices.get(u.id);
    if (!d) continue; // a device the snapshot does not know yet: the next snapshot brings it
    for (const p of u.points) {
      const old = d.points.get(p.name);
      if (old && isAlarm(p) && !isAlarm(old)) addActivity("alarm", `${u.id} ${p.name}: ${fmtValue(old)} → ${fmtValue(p)}`);
      d.points.set(p.name, p);
    }
    Object.assign(d, { health: u.health, good: u.good, stale: u.stale, bad: u.bad });
    noteHealth(d, true);
    const old = document.querySelector(`article.card[data-device="${CSS.escape(u.id)}"]`);
    if (old) old.replaceWith(card(d));
    if (state.selected === u.id) renderDetailPoints();
  }
}

// ---- device detail ----

function select(id) {
  state.selected = id;
  renderDetail();
  $("detail").scrollIntoView({ block: "start" });
}

function renderDetail() {
  const d = state.devices.get(state.selected);
  $("detail").hidden = !d;
  if (!d) return;
  $("detail-title").textContent = d.id;
  $("detail-meta").replaceChildren(el("span", { class: `badge h-${d.health}` }, d.health), " ",
    [d.profile, d.class, d.firmware && "fw " + d.firmware, d.transport, d.address, d.room && "room " + d.room].filter(Boolean).join(" · "));
  renderDetailPoints();
  loadCharts();
}

function renderDetailPoints() {
  const d = state.devices.get(state.selected);
  if (!d) return;
  const rows = [...d.points.values()].sort((a, b) => a.name.localeCompare(b.name)).map(p =>
    el("tr", { class: `q-${p.quality}`, "data-point": p.name }, el("td", {}, p.name), el("td", { class: valueClass(p) }, fmtValue(p)), el("td", {}, timeEl(p.time))));
  $("detail-points").tBodies[0].replaceChildren(...rows);
}

async function loadCharts() {
  const id = state.selected;
  const d = state.devices.get(id);
  if (!d) return;
  const names = keyPoints(d).filter(p => p.value !== undefined && typeof p.value !== "string").map(p => p.name);
  try {
    const h = await api(`api/v1/devices/${encodeURIComponent(id)}/history`);
    if (state.selected !== id) return;
    const all = Object.keys(h.points).sort();
    const first = [...names.filter(n => h.points[n] && h.points[n].kind === "number"), ...all.filter(n => !names.includes(n) && h.points[n].kind === "number")].slice(0, 8);
    $("charts").replaceChildren(...first.map(n => chart(n, h.points[n])));
  } catch (e) {
    $("charts").replaceChildren(el("p", { class: "err" }, `history: ${e.message}`));
  }
}

// ---- alerts ----

const SEV = { critical: 4, major: 3, warning: 2, info: 1 };

async function loadAlerts() {
  try {
    const doc = await api("api/v1/alerts");
    state.alerts = doc;
    renderAlerts();
    renderPaths({ alert_paths: doc.paths, all_paths_down: doc.all_paths_down, destinations: state.paths?.destinations });
  } catch (e) {
    if (e.status === 404) { $("alert-hint").textContent = "alerting is not configured on this gateway"; return; }
    $("alert-hint").textContent = `alerts: ${e.message}`;
  }
}

function renderAlerts() {
  const doc = state.alerts;
  if (!doc) return;
  const active = [...doc.active].sort((a, b) => (SEV[b.severity] - SEV[a.severity]) || (Date.parse(b.active_at) - Date.parse(a.active_at)));
  $("alert-count").textContent = active.length ? `(${active.length} active)` : "(none active)";
  $("alert-hint").textContent = can("operator") ? "" : "Log in as an operator to acknowledge or silence.";
  $("alert-list").replaceChildren(...active.map(alertItem));
  if (active.length === 0) $("alert-list").replaceChildren(el("li", { class: "none" }, "No active alerts."));
  $("pending-list").replaceChildren(...(doc.pending || []).map(p => el("li", { class: `sev-${p.severity}` },
    el("span", { class: "sev" }, p.severity), ` ${p.rule} on ${p.instance} · holding since `, timeEl(p.since))));
  $("silence-list").replaceChildren(...(doc.silences || []).map(s => el("li", { class: "silence", "data-silence": s.id },
    `${[s.rule, s.device, s.group, s.class].filter(Boolean).join(" ")} up to ${s.severity}, by ${s.by}: ${s.reason} · until ${new Date(s.until).toLocaleTimeString()} `,
    el("button", { type: "button", class: "unsilence", disabled: !can("operator"), onclick: () => unsilence(s.id) }, "Unsilence"))));
  const crit = active.filter(a => a.severity === "critical" && a.state === "firing");
  const b = $("banner-critical");
  b.hidden = crit.length === 0;
  if (crit.length) {
    b.replaceChildren(`CRITICAL: ${crit.length} alert${crit.length > 1 ? "s" : ""} firing · `, crit[0].summary || crit[0].rule, " · since ", timeEl(crit[0].fired_at || crit[0].active_at));
  }
}

function alertItem(a) {
  const acked = a.ack ? el("div", { class: "ack" }, `acknowledged by ${a.ack.by} `, timeEl(a.ack.at), a.ack.comment ? `: ${a.ack.comment}` : "") : null;
  const silenced = a.silence ? el("div", { class: "silenced" }, `silenced by ${a.silence.by} until ${new Date(a.silence.until).toLocaleTimeString()}: ${a.silence.reason}`) : null;
  const op = can("operator");
  const why = op ? "" : "needs the operator role: log in";
  const form = el("form", { class: "silence-form", hidden: true, onsubmit: e => { e.preventDefault(); silence(a, e.target); } },
    el("select", { name: "duration" }, ["30m", "1h", "2h", "4h", "8h"].map(d => el("option", { value: d }, d))),
    el("input", { name: "reason", placeholder: "reason (required)", required: true }),
    el("button", { type: "submit" }, "Silence"));
  return el("li", { class: `alert sev-${a.severity} st-${a.state}${a.ack ? " acked" : ""}`, "data-alert": a.id, "data-rule": a.rule },
    el("div", { class: "head" }, el("span", { class: "sev" }, a.severity), el("span", { class: "rule" }, a.rule), " ", el("span", { class: "inst" }, a.device || a.group || "")),
    el("div", { class: "summary" }, a.summary || ""),
    el("div", { class: "when" }, `${a.state}${a.supervision_lost ? " (supervision lost)" : ""} since `, timeEl(a.fired_at || a.active_at)),
    acked, silenced,
    el("div", { class: "actions" },
      a.ack ? null : el("button", { type: "button", class: "ack-btn", disabled: !op, title: why, onclick: () => ack(a.id) }, "Acknowledge"),
      el("button", { type: "button", class: "silence-btn", disabled: !op, title: why, onclick: e => { form.hidden = !form.hidden; } }, "Silence…")),
    form);
}

function flash(msg, cls = "err") {
  addActivity(cls, msg);
}

async function ack(id) {
  try {
    await api(`api/v1/alerts/${encodeURIComponent(id)}/ack`, { method: "POST", body: { comment: "" } });
  } catch (e) { flash(`acknowledge failed: ${e.message}`); }
  loadAlerts();
}

async function silence(a, form) {
  const body = { rule: a.rule, duration: form.duration.value, reason: form.reason.value };
  if (a.device) body.device = a.device;
  if (a.group) body.group = a.group;
  try {
    await api("api/v1/silences", { method: "POST", body });
  } catch (e) { flash(`silence failed: ${e.message}`); }
  loadAlerts();
}

async function unsilence(id) {
  try {
    await api(`api/v1/silences/${encodeURIComponent(id)}`, { method: "DELETE" });
  } catch (e) { flash(`unsilence failed: ${e.message}`); }
  loadAlerts();
}

// ---- delivery ----

function renderPaths(ev) {
  if (!ev) return;
  if (ev.now) setServerNow(ev.now);
  state.paths = { ...state.paths, ...Object.fromEntries(Object.entries(ev).filter(([, v]) => v !== undefined)) };
  const p = state.paths;
  $("banner-paths").hidden = !p.all_paths_down;
  $("path-list").replaceChildren(...(p.alert_paths || []).map(x => el("li", { class: x.up ? "up" : "down", "data-path": x.name },
    el("span", { class: "dot" }), `${x.name} (${x.kind}) ${x.up ? "up" : "DOWN"} · ${x.depth} waiting · ${x.delivered} delivered`,
    x.last_error && !x.up ? el("div", { class: "err" }, x.last_error) : null,
    x.down_since ? el("div", {}, "down since ", timeEl(x.down_since)) : null)));
  $("dest-list").replaceChildren(...(p.destinations || []).map(x => el("li", { class: x.connected ? "up" : "down", "data-dest": x.name },
    el("span", { class: "dot" }), `${x.kind} ${x.name} ${x.connected ? "connected" : "DISCONNECTED"} · outbox ${x.outbox?.Depth ?? 0} waiting`,
    x.last_error && !x.connected ? el("div", { class: "err" }, x.last_error) : null)));
}

// ---- load shed ----

async function loadLoadshed() {
  const body = $("loadshed-body");
  try {
    const doc = await api("api/v1/loadshed");
    const policies = doc && (doc.policies || []);
    if (!policies || policies.length === 0) {
      body.replaceChildren(el("p", { class: "hint" }, "Load shed: not configured."));
      return;
    }
    body.replaceChildren(el("ul", {}, policies.map(p => el("li", { "data-policy": p.name }, `${p.name}: ${p.armed ? "ARMED" : "disarmed"}`))),
      el("p", { class: "hint" }, "Arming from the dashboard is not available yet."));
  } catch (e) {
    body.replaceChildren(el("p", { class: "hint" }, e.status === 404 ? "Load shed is not available in this build." : `load shed: ${e.message}`));
  }
}

// ---- demo ----

async function loadDemo() {
  try {
    state.demo = await api("api/v1/demo/scenarios");
  } catch { return; } // not in demo mode
  $("demo").hidden = false;
  const sel = $("demo-scenario");
  sel.replaceChildren(...state.demo.filter(s => s.devices.length).map(s => el("option", { value: s.name, title: s.description }, s.name)));
  sel.value = state.demo.some(s => s.name === "thermal-runaway") ? "thermal-runaway" : sel.value;
  demoDevices();
  renderDemoRole();
}
function demoDevices() {
  const sc = (state.demo || []).find(s => s.name === $("demo-scenario").value);
  $("demo-device").replaceChildren(...(sc ? sc.devices : []).map(id => el("option", { value: id }, id)));
}
function renderDemoRole() {
  $("demo-trigger").disabled = !can("operator");
  $("demo-trigger").title = can("operator") ? "" : "needs the operator role: log in";
}
async function triggerDemo(e) {
  e.preventDefault();
  const scenario = $("demo-scenario").value, device = $("demo-device").value;
  try {
    await api("api/v1/demo/scenario", { method: "POST", body: { device, scenario } });
    $("demo-result").textContent = `${scenario} started on ${device}`;
    addActivity("info", `demo: ${scenario} on ${device}`);
  } catch (err) { $("demo-result").textContent = `failed: ${err.message}`; }
}

// ---- what changed ----

function addActivity(kind, text) {
  state.activity.unshift({ kind, text, at: new Date(serverNow()).toISOString() });
  state.activity.length = Math.min(state.activity.length, 40);
  $("activity-list").replaceChildren(...state.activity.map(a => el("li", { class: `act-${a.kind}` }, timeEl(a.at), " ", a.text)));
}

// ---- session ----

function renderUser() {
  const loggedIn = session.via === "session" || session.via === "token";
  $("login").hidden = loggedIn;
  $("me").hidden = !loggedIn;
  $("me-name").textContent = loggedIn ? `${session.name} (${session.role})` : "";
  renderAlerts();
  renderDemoRole();
}

// ---- stream ----

let es = null;
let alertsTimer = 0;
function connect() {
  if (es) es.close();
  es = new EventSource("api/v1/stream");
  es.onopen = async () => {
    $("status").textContent = "live";
    $("status").className = "conn live";
    $("banner-stream").hidden = true;
    // Anything may have changed while the stream was down.
    await Promise.all([loadDevices(), loadAlerts()]);
  };
  es.onerror = () => {
    $("status").textContent = "reconnecting…";
    $("status").className = "conn down";
    $("banner-stream").hidden = false;
    if (es.readyState === EventSource.CLOSED) setTimeout(connect, 3000);
  };
  es.addEventListener("points", m => applyPoints(JSON.parse(m.data)));
  es.addEventListener("alert", m => {
    const a = JSON.parse(m.data);
    addActivity(a.kind === "firing" ? `sev-${a.severity}` : "info", `${a.severity} ${a.rule} ${a.device || a.group || ""}: ${a.kind}${a.ack ? " by " + a.ack.by : ""}`);
    clearTimeout(alertsTimer);
    alertsTimer = setTimeout(loadAlerts, 100);
  });
  es.addEventListener("paths", m => renderPaths(JSON.parse(m.data)));
}

async function loadDevices() {
  try {
    setDevices(await api("api/v1/devices"));
  } catch (e) {
    $("status").textContent = `gateway: ${e.message}`;
    $("status").className = "conn down";
  }
}

async function main() {
  $("groupby").addEventListener("change", renderOverview);
  $("detail-close").addEventListener("click", () => { state.selected = ""; renderDetail(); });
  $("demo-scenario").addEventListener("change", demoDevices);
  $("demo-form").addEventListener("submit", triggerDemo);
  $("login").addEventListener("submit", async e => {
    e.preventDefault();
    const f = e.target;
    try {
      // f.name is the form's own name attribute, not the input.
      await login(f.elements.namedItem("name").value, f.elements.namedItem("password").value);
      f.elements.namedItem("password").value = "";
      $("login-error").textContent = "";
    } catch (err) { $("login-error").textContent = err.message; }
    renderUser();
  });
  $("logout").addEventListener("click", async () => { await logout(); renderUser(); });
  await whoami();
  renderUser();
  await Promise.all([loadDevices(), loadAlerts(), loadLoadshed(), loadDemo()]);
  connect();
  setInterval(tickAges, 1000);
  setInterval(() => { if (state.selected) loadCharts(); }, 5000);
  document.body.dataset.ready = "1";
}
main();
