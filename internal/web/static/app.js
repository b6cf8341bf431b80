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
  loadshed: null, // the last GET /api/v1/loadshed
  loadshedErr: null,
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
  for (const t of document.querySelectorAll("time.until")) t.textContent = untilText(t.getAttribute("datetime"));
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
  // A quality this page does not know is not a reading of now either.
  if (p.quality !== "good") return p.quality ? String(p.quality) : "no quality";
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
  renderCounts();
}

// renderCounts is the health summary above the cards; live updates change
// it as much as the cards.
function renderCounts() {
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
  renderCounts();
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
  const sil = doc.silences || [];
  $("silence-list").replaceChildren(...sil.map(s => el("li", { class: "silence", "data-silence": s.id },
    el("div", {}, el("b", {}, [s.rule, s.device, s.group, s.class].filter(Boolean).join(" · ")), ` up to ${s.severity}`),
    el("div", { class: "hint" }, `by ${s.by}: ${s.reason} · until ${new Date(s.until).toLocaleTimeString()}`),
    el("button", { type: "button", class: "unsilence", disabled: !can("operator"), title: can("operator") ? "" : "needs the operator role: log in", onclick: () => unsilence(s.id) }, "Unsilence"))));
  if (sil.length === 0) $("silence-list").replaceChildren(el("li", { class: "none" }, "No silences."));
  const crit = active.filter(a => a.severity === "critical" && a.state === "firing");
  const b = $("banner-critical");
  b.hidden = crit.length === 0;
  if (crit.length) {
    b.replaceChildren(`CRITICAL: ${crit.length} alert${crit.length > 1 ? "s" : ""} firing · `, crit[0].summary || crit[0].rule, " · since ", timeEl(crit[0].fired_at || crit[0].active_at));
  }
}

function alertItem(a) {
  const acked = a.ack ? el("div", { class: "ack" }, `acknowledged by ${a.ack.by} `, timeEl(a.ack.at), a.ack.comment ? `: ${a.ack.comment}` : "") : null;
  const op = can("operator");
  const why = op ? "" : "needs the operator role: log in";
  const silenced = a.silence ? el("div", { class: "silenced" }, `silenced by ${a.silence.by} until ${new Date(a.silence.until).toLocaleTimeString()}: ${a.silence.reason} `,
    el("button", { type: "button", class: "unsilence", disabled: !op, title: why, onclick: () => unsilence(a.silence.id) }, "Unsilence")) : null;
  return el("li", { class: `alert sev-${a.severity} st-${a.state}${a.ack ? " acked" : ""}${a.silence ? " silenced" : ""}`, "data-alert": a.id, "data-rule": a.rule, "data-instance": a.device || a.group || "" },
    el("div", { class: "head" }, el("span", { class: "sev" }, a.severity), el("span", { class: "rule" }, a.rule), " ", el("span", { class: "inst" }, a.device || a.group || "")),
    el("div", { class: "summary" }, a.summary || ""),
    el("div", { class: "when" }, `${a.state}${a.supervision_lost ? " (supervision lost)" : ""} since `, timeEl(a.fired_at || a.active_at)),
    acked, silenced,
    el("div", { class: "actions" },
      a.ack ? null : el("button", { type: "button", class: "ack-btn", disabled: !op, title: why, onclick: () => openAck(a) }, "Acknowledge…"),
      a.silence ? null : el("button", { type: "button", class: "silence-btn", disabled: !op, title: why, onclick: () => openSilence(a) }, "Silence…")));
}

function flash(msg, cls = "err") {
  addActivity(cls, msg);
}

// The alert the open ack or silence dialog is about. The dialog keeps it
// even when the list re-renders under it.
let dialogAlert = null;

function openAck(a) {
  dialogAlert = a;
  $("ack-what").replaceChildren(el("p", { class: `sev-${a.severity}` }, el("span", { class: "sev" }, a.severity), " ", el("b", {}, a.rule), ` on ${a.device || a.group || "?"}`),
    el("p", { class: "hint" }, a.summary || ""));
  $("ack-comment").value = "";
  $("ack-error").textContent = "";
  $("ack-dialog").showModal();
  $("ack-comment").focus();
}

async function confirmAck(e) {
  e.preventDefault();
  const a = dialogAlert;
  if (!a) return;
  try {
    await api(`api/v1/alerts/${encodeURIComponent(a.id)}/ack`, { method: "POST", body: { comment: $("ack-comment").value.trim() } });
    $("ack-dialog").close();
  } catch (err) { $("ack-error").textContent = `acknowledge failed: ${err.message}`; }
  loadAlerts();
}

// openSilence prefills the silence dialog with the alert's matchers: its
// rule and its device or group. Unticking one widens the silence.
function openSilence(a) {
  dialogAlert = a;
  $("silence-dialog-title").textContent = `Silence ${a.rule} on ${a.device || a.group || "?"}`;
  $("silence-rule").value = a.rule;
  $("silence-use-rule").checked = true;
  for (const k of ["device", "group"]) {
    $(`silence-${k}`).value = a[k] || "";
    $(`silence-use-${k}`).checked = !!a[k];
    $(`silence-${k}-row`).hidden = !a[k];
  }
  $("silence-duration").value = "1h";
  $("silence-reason").value = "";
  $("silence-error").textContent = "";
  checkSilence();
  $("silence-dialog").showModal();
  $("silence-reason").focus();
}

function silenceBody() {
  const body = { duration: $("silence-duration").value, reason: $("silence-reason").value.trim() };
  for (const k of ["rule", "device", "group"]) {
    const v = $(`silence-${k}`).value.trim();
    if ($(`silence-use-${k}`).checked && v) body[k] = v;
  }
  return body;
}

// checkSilence enables Silence only with a reason and at least one
// matcher: the server refuses a silence that would match everything.
function checkSilence() {
  const b = silenceBody();
  $("silence-confirm").disabled = !b.reason || !(b.rule || b.device || b.group);
}

async function confirmSilence(e) {
  e.preventDefault();
  try {
    await api("api/v1/silences", { method: "POST", body: silenceBody() });
    $("silence-dialog").close();
  } catch (err) { $("silence-error").textContent = `silence failed: ${err.message}`; }
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

// Durations an engineer may arm a policy for; the gateway refuses more
// than its max_arm (8h unless configured) and says so in the dialog.
const ARM_DURATIONS = ["30m", "1h", "2h", "4h", "8h"];

// fmtDelay renders a stage's delay (nanoseconds, as the API gives a Go
// duration).
function fmtDelay(ns) {
  const s = Math.round((ns || 0) / 1e9);
  if (s === 0) return "at once";
  if (s < 120) return `${s} s after the previous stage`;
  return `${Math.round(s / 60)} min after the previous stage`;
}

function loadTarget(l) {
  return `${l.device} ${l.point}${l.index ? `[${l.index}]` : ""} → ${l.off}`;
}

async function loadLoadshed() {
  try {
    state.loadshed = await api("api/v1/loadshed");
    state.loadshedErr = null;
  } catch (e) {
    state.loadshed = null;
    state.loadshedErr = e;
  }
  renderLoadshed();
}

function renderLoadshed() {
  const body = $("loadshed-body");
  const e = state.loadshedErr;
  if (e) {
    body.replaceChildren(el("p", { class: "hint" }, e.status === 404 ? "Load shed is not available in this build." : `load shed: ${e.message}`));
    return;
  }
  const doc = state.loadshed;
  if (!doc) return;
  const policies = doc.policies || [];
  if (policies.length === 0) {
    body.replaceChildren(el("p", { class: "hint" }, "Load shed: not configured on this gateway."));
    return;
  }
  const eng = can("engineer");
  // replaceChildren would show a null as the text "null".
  body.replaceChildren(...[...policies.map(policyItem),
    eng ? null : el("p", { class: "hint", id: "loadshed-hint" }, "Arming, disarming, the inhibit switch and restoring loads need the engineer role: log in as an engineer."),
    el("h3", {}, "Audit"),
    el("ol", { id: "loadshed-audit" }, (doc.recent || []).slice(0, 8).map(auditItem))].filter(Boolean));
  if (!(doc.recent || []).length) $("loadshed-audit").replaceChildren(el("li", { class: "none" }, "Nothing recorded yet."));
}

function policyItem(p) {
  const eng = can("engineer");
  const why = eng ? "" : "needs the engineer role";
  const plan = p.plan || [];
  const shed = p.shed;
  const running = shed && !shed.ended;
  const tiers = [...new Set(plan.flatMap(st => st.loads.map(l => l.tier)))];
  const trig = p.trigger_firing ? el("span", { class: "ls-trig firing" }, `FIRING${p.trigger_instance ? " on " + p.trigger_instance : ""}`)
    : p.trigger_pending ? el("span", { class: "ls-trig pending" }, `holding, waiting out ${p.for || "its for"}`)
    : el("span", { class: "ls-trig idle" }, "not holding");
  const stages = plan.map((st, i) => {
    let status = "";
    if (running) status = i < shed.next_stage ? "done" : i === shed.next_stage ? "next" : "";
    return el("li", { class: `ls-stage ${status}`, "data-stage": String(i), "data-loads": st.loads.map(l => l.load).join(",") },
      el("div", { class: "ls-stage-head" }, `Stage ${i + 1} · ${fmtDelay(st.after)}`,
        status === "done" && shed.stage_at && shed.stage_at[i] ? [" · done ", timeEl(shed.stage_at[i])] : null,
        status === "next" ? " · next" : null),
      el("ul", {}, st.loads.map(l => {
        // After the shed, a load it switched off shows off until restored.
        const done = running && shed.done ? shed.done[l.load] : (p.still_off || []).includes(l.load) ? "off" : "";
        return el("li", { class: `ls-load${done ? " " + done : ""}`, "data-load": l.load },
          el("b", {}, l.load), " ", el("span", { class: "tier" }, l.tier), " ", el("small", {}, loadTarget(l)),
          done ? el("span", { class: `ls-done ${done}` }, ` ${done}`) : null);
      })));
  });
  const armed = p.armed;
  const inh = p.inhibited;
  const rs = shed && shed.restore;
  const restoring = rs && !rs.ended;
  const stillOff = p.still_off || [];
  // The gateway refuses a restore while the trigger holds (409); the
  // button says so before anyone tries.
  const holds = p.trigger_firing || p.trigger_pending;
  const restoreWhy = !eng ? why : holds ? "the trigger holds: restoring now would put the loads back on the failing supply" : inh ? "the policy is inhibited: release it first" : "";
  return el("div", { class: `ls-policy${armed ? " armed" : ""}${inh ? " inhibited" : ""}`, "data-policy": p.name },
    el("div", { class: "ls-head" }, el("b", { class: "ls-name" }, p.name), " ",
      el("span", { class: `ls-badge ${armed ? "armed" : "disarmed"}` }, armed ? "ARMED" : "disarmed"),
      inh ? [" ", el("span", { class: "ls-badge inhibited" }, "INHIBITED")] : null),
    armed
      ? el("div", { class: "ls-arming" }, `armed by ${armed.by} `, timeEl(armed.at),
          armed.until ? [` until ${new Date(armed.until).toLocaleString()} (`, el("time", { class: "until", datetime: armed.until }, untilText(armed.until)), ")"] : " until disarmed (config)",
          armed.reason ? `: ${armed.reason}` : "")
      : el("div", { class: "ls-arming hint" }, "Disarmed: when the trigger holds it only records what it would switch off (dry run)."),
    inh ? el("div", { class: "ls-inhibit" }, `inhibited by ${inh.by} `, timeEl(inh.at), inh.reason ? `: ${inh.reason}` : "", " · nothing is written while set") : null,
    el("div", { class: "ls-trigger" }, "trigger ", el("code", {}, p.trigger), p.for ? ` for ${p.for}` : "", " · ", trig),
    el("div", { class: "ls-tiers" }, `sheds ${tiers.join(", ") || "nothing"}`, (p.never_shed_tiers || []).length ? ` · never sheds ${p.never_shed_tiers.join(", ")}` : "", ` · restore ${p.restore}`),
    running ? el("div", { class: "ls-progress" }, `SHED IN PROGRESS: ${shed.next_stage} of ${plan.length} stages done, started `, timeEl(shed.started_at))
      : shed ? el("div", { class: "ls-progress hint" }, `last shed ${shed.result || "ended"} `, timeEl(shed.ended)) : null,
    rs ? el("div", { class: `ls-restore${restoring ? " running" : ""}` },
      restoring ? `RESTORE IN PROGRESS${rs.manual ? ` by ${rs.by}` : " (automatic)"}, started ` : `${rs.manual ? `restore by ${rs.by}` : "automatic restore"} ${rs.result === "restored" ? "done" : rs.result || "ended"} `,
      timeEl(restoring ? rs.started_at : rs.ended), rs.reason ? `: ${rs.reason}` : "") : null,
    !running && stillOff.length ? el("div", { class: "ls-still-off" }, `still off after the shed: ${stillOff.join(", ")}`) : null,
    el("ol", { class: "ls-stages" }, stages),
    el("div", { class: "actions" },
      armed ? el("button", { type: "button", class: "ls-disarm", disabled: !eng, title: why, onclick: () => openLs("disarm", p) }, "Disarm…")
        : el("button", { type: "button", class: "ls-arm danger", disabled: !eng, title: why, onclick: () => openLs("arm", p) }, "Arm…"),
      el("button", { type: "button", class: "ls-inhibit-btn", disabled: !eng, title: why, onclick: () => openLs(inh ? "release" : "inhibit", p) }, inh ? "Release inhibit…" : "Inhibit…"),
      !running && !restoring && stillOff.length
        ? el("button", { type: "button", class: "ls-restore-btn danger", disabled: restoreWhy !== "", title: restoreWhy, onclick: () => openLs("restore", p) }, "Restore…") : null));
}

function untilText(iso) {
  const s = Math.round((Date.parse(iso) - serverNow()) / 1000);
  if (s <= 0) return "expired";
  if (s < 120) return `${s} s left`;
  if (s < 7200) return `${Math.round(s / 60)} min left`;
  return `${Math.round(s / 360) / 10} h left`;
}

function auditItem(r) {
  const what = r.action ? `${r.action.load}: ${r.action.skipped ? "skipped, " + r.action.skipped : r.action.verified ? "off, verified" : "NOT VERIFIED" + (r.action.write_error ? " (" + r.action.write_error + ")" : "")}` : "";
  return el("li", { class: `ls-audit ev-${r.event}` }, timeEl(r.time), " ", el("b", {}, r.event), ` ${r.policy}`,
    r.operator ? ` by ${r.operator}` : "", r.reason ? `: ${r.reason}` : "", what ? ` · ${what}` : "", r.dry_run ? " (dry run)" : "");
}

// The policy and action the load-shed dialog is about.
let lsAction = null;

// openLs opens the dialog for an engineer's action on a policy. Arming
// names every load the policy would switch off, stage by stage, and asks
// for the policy's name typed out: a power cut must not be one stray click.
function openLs(kind, p) {
  lsAction = { kind, policy: p.name };
  const titles = { arm: `Arm load shed “${p.name}”`, disarm: `Disarm “${p.name}”`, inhibit: `Inhibit “${p.name}”`, release: `Release the inhibit of “${p.name}”`, restore: `Restore the loads “${p.name}” shed` };
  const buttons = { arm: "Arm", disarm: "Disarm", inhibit: "Inhibit", release: "Release inhibit", restore: "Restore" };
  const typed = kind === "arm" || kind === "restore"; // the policy's name typed out
  $("ls-dialog-title").textContent = titles[kind];
  $("ls-confirm").textContent = buttons[kind];
  $("ls-confirm").classList.toggle("danger", kind === "arm" || kind === "release" || kind === "restore");
  const what = [];
  if (kind === "arm") {
    const n = (p.plan || []).reduce((k, st) => k + st.loads.length, 0);
    what.push(el("p", { class: "warn" }, `Once armed, when the trigger holds (`, el("code", {}, p.trigger), p.for ? ` for ${p.for}` : "",
      `) on good data, the gateway switches OFF these ${n} load${n === 1 ? "" : "s"}, in this order, without asking again:`));
    what.push(el("ol", { class: "ls-confirm-list" }, (p.plan || []).map((st, i) => el("li", {}, `Stage ${i + 1}, ${fmtDelay(st.after)}:`,
      el("ul", {}, st.loads.map(l => el("li", { "data-load": l.load }, el("b", {}, l.load), ` (${l.tier}): `, loadTarget(l))))))));
    what.push(el("p", { class: "hint" }, `They stay off until restored (restore: ${p.restore}${p.restore === "manual" ? ": by hand, with this panel's Restore button or at the device" : ""}). Tiers never shed: ${(p.never_shed_tiers || []).join(", ") || "none"}.`,
      p.inhibited ? " The policy is inhibited now: nothing is written until the inhibit is released." : ""));
  } else if (kind === "restore") {
    // The order the gateway switches them on: last stage first, and
    // within a stage the last load first.
    const off = p.still_off || [];
    const order = [...(p.plan || [])].map((st, i) => ({ st, i })).reverse()
      .map(({ st, i }) => ({ i, loads: [...st.loads].reverse().filter(l => off.includes(l.load)) })).filter(x => x.loads.length);
    const n = order.reduce((k, x) => k + x.loads.length, 0);
    what.push(el("p", { class: "warn" }, `The gateway switches these ${n} load${n === 1 ? "" : "s"} back ON, in this order, at most one stage per min_stage_interval, each read back:`));
    what.push(el("ol", { class: "ls-confirm-list" }, order.map(x => el("li", {}, `Stage ${x.i + 1}:`,
      el("ul", {}, x.loads.map(l => el("li", { "data-load": l.load }, el("b", {}, l.load), ` (${l.tier}): ${l.device} ${l.point}${l.index ? `[${l.index}]` : ""} → on`)))))));
    what.push(el("p", { class: "hint" }, "Loads that were already off before the shed stay off. The gateway refuses while the trigger holds, and stops if it holds again during the restore."));
  } else if (kind === "disarm") {
    what.push(el("p", {}, "Disarmed, the policy only records what it would do. A shed in progress stops before its next load; loads already off stay off."));
  } else if (kind === "inhibit") {
    what.push(el("p", {}, "While inhibited, the policy writes nothing, armed or not; a trigger is recorded and alerted as refused."));
  } else {
    what.push(el("p", { class: "warn" }, p.armed ? "The policy is ARMED: once released, a holding trigger switches loads off." : "The policy is disarmed: released, it still only does dry runs."));
  }
  $("ls-dialog-what").replaceChildren(...what);
  $("ls-name-row").hidden = !typed;
  $("ls-name-row").firstChild.textContent = `Type the policy's name, ${p.name}, to confirm `;
  $("ls-name").value = "";
  $("ls-duration-row").hidden = kind !== "arm";
  $("ls-duration").replaceChildren(...ARM_DURATIONS.map(d => el("option", { value: d }, d)));
  $("ls-duration").value = "2h";
  $("ls-reason").value = "";
  $("ls-error").textContent = "";
  checkLs();
  $("ls-dialog").showModal();
  (typed ? $("ls-name") : $("ls-reason")).focus();
}

function checkLs() {
  const a = lsAction;
  const ok = a && $("ls-reason").value.trim() !== "" && ((a.kind !== "arm" && a.kind !== "restore") || $("ls-name").value === a.policy);
  $("ls-confirm").disabled = !ok;
}

async function confirmLs(e) {
  e.preventDefault();
  const a = lsAction;
  checkLs();
  if (!a || $("ls-confirm").disabled) return;
  const reason = $("ls-reason").value.trim();
  const path = `api/v1/loadshed/${encodeURIComponent(a.policy)}/`;
  const req = {
    arm: [path + "arm", { reason, duration: $("ls-duration").value }],
    disarm: [path + "disarm", { reason }],
    inhibit: [path + "inhibit", { reason, on: true }],
    release: [path + "inhibit", { reason, on: false }],
    restore: [path + "restore", { reason }],
  }[a.kind];
  try {
    state.loadshed = await api(req[0], { method: "POST", body: req[1] });
    state.loadshedErr = null;
    $("ls-dialog").close();
    addActivity("info", `load shed ${a.policy}: ${a.kind} by ${session.name}`);
  } catch (err) {
    $("ls-error").textContent = `${a.kind} failed: ${err.message}`;
  }
  renderLoadshed();
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
  renderLoadshed();
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
    await Promise.all([loadDevices(), loadAlerts(), loadLoadshed()]);
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
    // A load-shed decision (dry run, shed, refusal) is raised as an alert
    // of rule loadshed/<policy>: the panel has news.
    if (a.rule && a.rule.startsWith("loadshed/")) loadLoadshed();
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
  for (const id of ["ls-name", "ls-reason"]) $(id).addEventListener("input", checkLs);
  $("ls-form").addEventListener("submit", confirmLs);
  $("ls-cancel").addEventListener("click", () => $("ls-dialog").close());
  for (const id of ["silence-rule", "silence-device", "silence-group", "silence-reason"]) $(id).addEventListener("input", checkSilence);
  for (const id of ["silence-use-rule", "silence-use-device", "silence-use-group"]) $(id).addEventListener("change", checkSilence);
  $("silence-form").addEventListener("submit", confirmSilence);
  $("silence-cancel").addEventListener("click", () => $("silence-dialog").close());
  $("ack-form").addEventListener("submit", confirmAck);
  $("ack-cancel").addEventListener("click", () => $("ack-dialog").close());
  await whoami();
  renderUser();
  await Promise.all([loadDevices(), loadAlerts(), loadLoadshed(), loadDemo()]);
  connect();
  setInterval(tickAges, 1000);
  setInterval(() => { if (state.selected) loadCharts(); }, 5000);
  // Arming, its expiry and stage progress are not on the stream: the
  // panel fetches them every few seconds (and at once after an action or
  // a load-shed alert).
  setInterval(loadLoadshed, 5000);
  document.body.dataset.ready = "1";
}
main();
