// The fleet page: one tile per encoder, problems first, live over server-sent events
// (GET /api/events: a `snapshot`, then `update`s and `ping`s; see admin/events.rs).
//
// Everything shown comes from devices or from the supervisor's view of them and is
// treated as hostile: it only ever reaches the page as textContent, never as HTML.
"use strict";

(function () {
  const LEVELS = ["unreachable", "critical", "degraded", "unknown", "held", "healthy"];
  const SYMBOL = {
    unreachable: "\u2298", critical: "\u2716", degraded: "\u25B2",
    unknown: "?", held: "\u2016", healthy: "\u2714",
  };
  // A supervisor that sent nothing (not even a ping, every 10 s) for this long is
  // taken as gone, even when the connection itself stays open.
  const SILENCE_MS = 25000;
  // demo-9 before demo-10.
  const byId = new Intl.Collator("en", { numeric: true }).compare;

  const $ = (id) => document.getElementById(id);
  const grid = $("grid");
  const dialog = $("detail");

  const views = new Map();   // id -> EncoderView, as last received
  const tiles = new Map();   // id -> { li, btn, parts… }
  const dirty = new Set();   // ids whose tile needs redrawing
  let order = [];            // ids in the order the grid shows them
  let terms = [];            // the filter, lower-cased words
  let filterChanged = false;
  let clockOffset = 0;       // supervisor clock minus this browser's
  let scheduled = false;
  let openId = null;
  let source = null;
  let lastMessageAt = 0;
  let connected = false;
  let lostAt = null;
  let summaryKey = "";
  const idRank = new Map(); // id -> its place in id order (numeric-aware)

  // Read back by the browser test and the measurement (cargo xtask screenshot):
  // render times in ms (`lastRenderMs`/`maxRenderMs`: renders of updates), sizes in
  // characters of event data.
  const stats = {
    events: 0, snapshots: 0, updates: 0, renders: 0,
    snapshotBytes: 0, lastUpdateBytes: 0, maxUpdateBytes: 0,
    lastParseMs: 0, lastRenderMs: 0, maxRenderMs: 0, snapshotRenderMs: 0,
    recentRenderMs: [], // the last 100 update renders
    tiles: 0, connected: false,
  };
  window.fleetPage = stats;

  // === Helpers ===

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function levelOf(v) {
    return LEVELS.includes(v.status) ? v.status : "unknown";
  }

  function rank(v) {
    return LEVELS.indexOf(levelOf(v));
  }

  function now() {
    return Date.now() + clockOffset;
  }

  function ago(iso) {
    const t = Date.parse(iso);
    if (Number.isNaN(t)) return "";
    const s = Math.max(0, Math.round((now() - t) / 1000));
    if (s < 90) return s + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 172800) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }

  function num(v, unit) {
    return v === null || v === undefined ? "\u2014" : v + (unit || "");
  }

  function searchText(v) {
    const parts = [v.id, levelOf(v), v.held ? "held" : ""];
    for (const r of v.reasons || []) parts.push(r.code, r.message);
    return parts.join(" ").toLowerCase();
  }

  // "stream failing_in_stream ≠ streaming · backoff 2/3"
  function replicator(name, r) {
    const wrap = el("span", "t-rep");
    if (!r) return wrap;
    const state = r.state || "unknown";
    const wrong = r.desired !== "observe" && state !== r.desired;
    wrap.append(name + " ");
    wrap.append(el("span", wrong ? "bad" : "", state));
    if (wrong) wrap.append(" \u2260 " + r.desired);
    if (r.phase && r.phase !== "settled") {
      wrap.append(" \u00b7 " + r.phase.replace(/_/g, " "));
      if (r.attempts) wrap.append(" " + r.attempts + "/" + r.max_attempts);
    }
    return wrap;
  }

  // === Tiles ===

  // One tile built by hand, then cloned: a thousand clones are much cheaper than a
  // thousand times ten createElement calls.
  const PROTO = (() => {
    const li = el("li");
    const btn = el("button", "tile");
    btn.type = "button";
    btn.setAttribute("aria-haspopup", "dialog");
    const head = el("span", "t-head");
    head.append(el("span", "t-level"), el("span", "t-score"));
    btn.append(head, el("span", "t-id"), el("span", "t-reason"),
      el("span", "t-row"), el("span", "t-row"), el("span", "t-row"));
    li.append(btn);
    return li;
  })();

  function makeTile(id) {
    const li = PROTO.cloneNode(true);
    const btn = li.firstChild;
    const [head, idEl, reason, reps, device, action] = btn.children;
    btn.dataset.id = id;
    idEl.textContent = id;
    idEl.title = id;
    return {
      li, btn, level: head.firstChild, score: head.lastChild,
      reason, reps, device, action, text: "", drawn: {},
    };
  }

  // Writes only what changed since the tile was last drawn: at a thousand tiles most
  // of an update is the same text again.
  function put(t, key, value, write) {
    if (t.drawn[key] === value) return;
    t.drawn[key] = value;
    write(value);
  }

  function actionText(a) {
    return a ? a.action.replace(/_/g, " ") + " " + a.outcome + " \u00b7 " + ago(a.at) : "no action taken";
  }

  function drawTile(t, v) {
    const level = levelOf(v);
    put(t, "level", level, (l) => {
      t.btn.className = "tile lvl-" + l;
      t.btn.dataset.level = l;
      t.level.textContent = SYMBOL[l] + " " + l;
    });
    put(t, "score", v.health_score === null ? "score \u2014" : "score " + Math.round(v.health_score),
      (s) => { t.score.textContent = s; });
    const reasons = v.reasons || [];
    put(t, "reason", reasons.length
      ? reasons[0].message + (reasons.length > 1 ? "  (+" + (reasons.length - 1) + ")" : "")
      : (level === "healthy" ? "all checks pass" : ""), (s) => { t.reason.textContent = s; });
    put(t, "reasons", reasons.map((r) => r.message).join("\n"), (s) => { t.reason.title = s; });
    // An encoder that does not answer shows what it last said, and says so.
    put(t, "reps", JSON.stringify([level === "unreachable", v.stream, v.record]), () => {
      t.reps.replaceChildren(level === "unreachable" ? "last seen: " : "",
        replicator("stream", v.stream), " \u00b7 ", replicator("record", v.record));
    });
    const pool = v.pool || {};
    let device = (v.device && v.device.temperature_c !== null ? v.device.temperature_c + " \u00b0C" : "\u2014 \u00b0C") +
      " \u00b7 pool " + num(pool.warm) + "/" + num(pool.max);
    if (pool.state && pool.state !== "ready") device += " " + pool.state.replace(/_/g, " ");
    if (pool.cooling) device += " \u00b7 cooling " + pool.cooling;
    put(t, "device", device, (s) => { t.device.textContent = s; });
    put(t, "action", actionText(v.last_action), (s) => { t.action.textContent = s; });
    t.text = searchText(v);
    put(t, "label", v.id + ", " + level + (reasons.length ? ", " + reasons[0].message : ""),
      (s) => { t.btn.setAttribute("aria-label", s); });
  }

  function matches(t) {
    return terms.every((w) => t.text.includes(w));
  }

  function scheduleRender() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      const ms = render();
      stats.renders += 1;
      stats.lastRenderMs = ms;
      stats.maxRenderMs = Math.max(stats.maxRenderMs, ms);
      stats.recentRenderMs.push(ms);
      if (stats.recentRenderMs.length > 100) stats.recentRenderMs.shift();
    });
  }

  function render() {
    scheduled = false;
    const t0 = performance.now();
    let reorder = false;
    for (const id of dirty) {
      const v = views.get(id);
      let t = tiles.get(id);
      if (!v) {
        if (t) { t.li.remove(); tiles.delete(id); }
        reorder = true;
        continue;
      }
      if (!t) { t = makeTile(id); tiles.set(id, t); reorder = true; }
      const before = t.btn.dataset.level;
      drawTile(t, v);
      if (before !== t.btn.dataset.level) reorder = true;
      if (terms.length) t.li.hidden = !matches(t);
    }
    const redrawDetail = openId !== null && dirty.has(openId);
    dirty.clear();
    if (reorder) {
      if (idRank.size !== views.size || [...views.keys()].some((id) => !idRank.has(id))) {
        idRank.clear();
        [...views.keys()].sort(byId).forEach((id, i) => idRank.set(id, i));
      }
      const next = [...views.values()]
        .sort((a, b) => rank(a) - rank(b) || idRank.get(a.id) - idRank.get(b.id))
        .map((v) => v.id);
      if (next.length !== order.length || next.some((id, i) => id !== order[i])) {
        // Move only the tiles out of place: one encoder changing level moves one tile,
        // not a thousand (each move makes the browser lay that tile out again).
        let at = grid.firstChild;
        for (const id of next) {
          const li = tiles.get(id).li;
          if (li === at) at = at.nextSibling; else grid.insertBefore(li, at);
        }
        order = next;
      }
    }
    if (filterChanged) {
      for (const t of tiles.values()) t.li.hidden = !matches(t);
      filterChanged = false;
    }
    $("empty").hidden = !(tiles.size && terms.length && order.every((id) => tiles.get(id).li.hidden));
    drawSummary();
    if (redrawDetail) drawDetail();
    stats.tiles = tiles.size;
    return performance.now() - t0;
  }

  function drawSummary() {
    const counts = {};
    for (const v of views.values()) counts[levelOf(v)] = (counts[levelOf(v)] || 0) + 1;
    // Rewritten only when a count changed: it is a live region, read out to
    // screen-reader users on every change.
    const key = views.size + ":" + LEVELS.map((l) => counts[l] || 0).join(",");
    if (key === summaryKey) return;
    summaryKey = key;
    const out = [el("span", "", views.size + (views.size === 1 ? " encoder" : " encoders"))];
    for (const level of LEVELS) {
      if (!counts[level]) continue;
      const s = el("span", "c-" + level);
      s.append(el("span", "n", SYMBOL[level] + " " + counts[level]), " " + level);
      out.push(s);
    }
    $("summary").replaceChildren(...out);
  }

  // === Detail ===

  function table(head, rows) {
    const tbl = el("table");
    const tr = el("tr");
    for (const h of head) tr.append(el("th", "", h));
    const thead = el("thead");
    thead.append(tr);
    const tbody = el("tbody");
    for (const row of rows) {
      const r = el("tr");
      for (const cell of row) {
        const td = el("td");
        if (cell instanceof Node) td.append(cell); else td.textContent = cell === null || cell === undefined ? "\u2014" : String(cell);
        r.append(td);
      }
      tbody.append(r);
    }
    tbl.append(thead, tbody);
    return tbl;
  }

  // A two-column table: a label, then its value.
  function pairs(list) {
    const tbl = el("table", "pairs");
    for (const [label, value] of list) {
      const r = el("tr");
      const td = el("td");
      if (value instanceof Node) td.append(value); else td.textContent = value === null || value === undefined ? "\u2014" : String(value);
      r.append(el("th", "", label), td);
      tbl.append(r);
    }
    return tbl;
  }

  function outcome(o) {
    return el("span", "o-" + o, o);
  }

  function drawDetail() {
    const v = views.get(openId);
    const body = $("d-body");
    if (!v) {
      $("d-title").textContent = openId + " \u2014 no longer supervised";
      body.replaceChildren();
      $("d-cool").disabled = true;
      $("d-hold").disabled = true;
      return;
    }
    const level = levelOf(v);
    $("d-title").textContent = SYMBOL[level] + " " + v.id + " \u2014 " + level;
    $("d-title").className = "c-" + level;
    $("d-cool").disabled = false;
    $("d-hold").disabled = false;
    $("d-hold").textContent = v.held ? "Release\u2026" : "Hold\u2026";
    const scroll = dialog.scrollTop;
    const parts = [];
    const reasons = el("ul");
    for (const r of v.reasons || []) reasons.append(el("li", "", r.code + ": " + r.message));
    if (!(v.reasons || []).length) reasons.append(el("li", "", "none"));
    parts.push(el("h3", "", "Status"), pairs([
      ["level", level + " since " + v.status_since + " (" + ago(v.status_since) + ")"],
      ["health score", v.health_score],
      ["last score", v.last_score === null ? null : v.last_score + " at " + v.last_score_at],
      ["in desired state", v.in_desired_state === null ? "unknown" : v.in_desired_state ? "yes" : "no"],
      ["held", v.held ? "yes: reconciliation paused" : "no"],
      ["events", v.events], ["load", v.load + " %"], ["url", v.url],
    ]), el("h3", "", "Reasons"), reasons);
    const rep = (name, r) => [name, r.desired, r.state === null ? null : r.state + " (" + r.state_value + ")",
      r.phase, r.attempts + "/" + r.max_attempts, num(r.next_step_in_s, " s"), num(r.out_of_state_for_s, " s")];
    parts.push(el("h3", "", "Stream and record"), table(
      ["", "desired", "state", "phase", "attempts", "next step in", "out of state for"],
      [rep("stream", v.stream), rep("record", v.record)]));
    const d = v.device || {};
    const a = v.last_action;
    parts.push(el("h3", "", "Device"), pairs([
      ["temperature", num(d.temperature_c, " \u00b0C")], ["media available", num(d.media_available_pct, " %")],
      ["system state", d.system_state], ["link errors", d.link_errors],
      ["auto recover streaming", d.auto_recover_streaming === null ? null : String(d.auto_recover_streaming)],
    ]), el("h3", "", "Last recovery action"), pairs(a ? [
      ["action", a.action], ["outcome", outcome(a.outcome)], ["error", a.error], ["at", a.at + " (" + ago(a.at) + ")"],
    ] : [["action", "none yet"]]));
    const p = v.pool || {};
    parts.push(el("h3", "", "Pool and connections"), pairs([
      ["state", p.state], ["warm / max", p.warm + " / " + p.max], ["checked out", p.checked_out],
      ["cooling", p.cooling], ["next connect in", num(p.retry_in_s, " s")],
    ]), table(["connection", "temperature", "load %", "allowed %", "in flight", "cooling", "req/s", "errors %"],
      (v.connections || []).map((c) => [c.connection_id, c.temperature, c.load, c.allowed_load,
        c.in_flight, c.cooling || "no", c.request_rate, c.error_rate])));
    const ch = v.checks || {};
    const last = ch.last;
    parts.push(el("h3", "", "Last check"), pairs([
      ["checks done", ch.count], ["last ran", ch.last_at ? ch.last_at + " (" + ago(ch.last_at) + ")" : null],
      ["failed in a row", ch.consecutive_failures],
      ["last that reached the device", last ? last.score + " (" + last.level + ") at " + last.at + " on connection " + last.connection_id : null],
    ]));
    if (last) {
      parts.push(table(["check", "outcome", "score", "detail", "ms", "source"],
        last.checks.map((c) => [c.name, outcome(c.outcome), c.score, c.detail, c.took_ms,
          typeof c.source === "string" ? c.source : JSON.stringify(c.source)])));
    }
    body.replaceChildren(...parts);
    dialog.scrollTop = scroll;
  }

  function openDetail(id) {
    openId = id;
    $("d-result").textContent = "";
    drawDetail();
    if (!dialog.open) dialog.showModal();
  }

  const TOKEN_KEY = "conn-supervisor-admin-token";

  function actionHeaders() {
    const headers = { Accept: "application/json" };
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = "Bearer " + token;
    return headers;
  }

  async function act(method, path, question, done) {
    const id = openId;
    if (id === null || !window.confirm(question)) return;
    const result = $("d-result");
    result.textContent = "sending\u2026";
    try {
      const url = "/api/encoders/" + encodeURIComponent(id) + path;
      let res = await fetch(url, { method, headers: actionHeaders() });
      // A server with an admin token refuses actions without it: ask once, keep it
      // for this tab only (sessionStorage), and send it again.
      if (res.status === 401) {
        const token = window.prompt("This supervisor needs its admin token to " + method + " " + path + ":");
        if (token) {
          sessionStorage.setItem(TOKEN_KEY, token.trim());
          res = await fetch(url, { method, headers: actionHeaders() });
          if (res.status === 401) sessionStorage.removeItem(TOKEN_KEY);
        }
      }
      const body = await res.json().catch(() => ({}));
      result.textContent = res.ok ? done(body) : "refused: HTTP " + res.status + " " + (body.error || "");
    } catch (e) {
      result.textContent = "not sent: " + e;
    }
  }

  $("d-cool").addEventListener("click", () => act("POST", "/cooldown",
    "Cool down every connection of " + openId + " now?\nNew work moves to cooler connections; fresh ones are warmed.",
    (b) => (b.cooling && b.cooling.length ? "cooling connections " + b.cooling.join(", ") : "no connection to cool")));
  $("d-hold").addEventListener("click", () => {
    const held = views.get(openId) && views.get(openId).held;
    if (held) {
      act("DELETE", "/hold", "Release " + openId + "?\nThe supervisor resumes reconciling it: it may start or restart its stream.",
        () => "released: reconciliation resumed");
    } else {
      act("POST", "/hold", "Hold " + openId + " for maintenance?\nThe supervisor stops reconciling it (no restarts) until released.",
        () => "held: reconciliation paused");
    }
  });
  $("d-close").addEventListener("click", () => dialog.close());
  // One listener for every tile, however many come and go.
  grid.addEventListener("click", (e) => {
    const tile = e.target instanceof Element ? e.target.closest(".tile") : null;
    if (tile) openDetail(tile.dataset.id);
  });
  dialog.addEventListener("close", () => { openId = null; });

  // === Filter ===

  $("filter").addEventListener("input", (e) => {
    terms = e.target.value.toLowerCase().split(/\s+/).filter(Boolean);
    filterChanged = true;
    scheduleRender();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && document.activeElement !== $("filter") && !dialog.open) {
      e.preventDefault();
      $("filter").focus();
    }
  });

  // === Live updates ===

  function setConnected(on) {
    connected = on;
    stats.connected = on;
    document.body.classList.toggle("disconnected", !on);
    const link = $("link");
    link.className = "link " + (on ? "live" : "down");
    link.textContent = on ? "live" : "disconnected";
    $("banner").hidden = on;
    if (on) {
      lostAt = null;
    } else if (lostAt === null) {
      lostAt = new Date();
      $("stale-since").textContent = "as of " + lostAt.toLocaleTimeString();
    }
  }

  function received(e) {
    lastMessageAt = Date.now();
    stats.events += 1;
    const t0 = performance.now();
    const data = JSON.parse(e.data);
    stats.lastParseMs = performance.now() - t0;
    const server = Date.parse(data.now);
    if (!Number.isNaN(server)) clockOffset = server - Date.now();
    if (!connected) setConnected(true);
    return data;
  }

  function connect() {
    if (source) source.close();
    lastMessageAt = Date.now();
    source = new EventSource("/api/events");
    source.addEventListener("snapshot", (e) => {
      const data = received(e);
      stats.snapshots += 1;
      stats.snapshotBytes = e.data.length;
      // After a reconnection the snapshot is the whole truth: what it lacks is gone.
      const seen = new Set();
      for (const v of data.encoders) { views.set(v.id, v); dirty.add(v.id); seen.add(v.id); }
      for (const id of views.keys()) if (!seen.has(id)) { views.delete(id); dirty.add(id); }
      stats.snapshotRenderMs = render();
    });
    source.addEventListener("update", (e) => {
      const data = received(e);
      stats.updates += 1;
      stats.lastUpdateBytes = e.data.length;
      stats.maxUpdateBytes = Math.max(stats.maxUpdateBytes, e.data.length);
      for (const v of data.encoders) { views.set(v.id, v); dirty.add(v.id); }
      for (const id of data.removed || []) { views.delete(id); dirty.add(id); }
      scheduleRender();
    });
    source.addEventListener("ping", received);
    source.addEventListener("error", () => {
      setConnected(false);
      // A refused or malformed answer closes the source for good; try again later.
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
    });
  }

  setInterval(() => {
    if (connected && Date.now() - lastMessageAt > SILENCE_MS) {
      setConnected(false);
      connect();
    }
    // Ages move on without events.
    for (const [id, t] of tiles) {
      const v = views.get(id);
      if (v && v.last_action) put(t, "action", actionText(v.last_action), (s) => { t.action.textContent = s; });
    }
  }, 5000);

  connect();
})();
