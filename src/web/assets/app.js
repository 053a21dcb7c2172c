// flatback's web view. Plain JavaScript, no framework, nothing from elsewhere.
// Every page reads /api/info, then its stream (server-sent events).
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const STATUS = { arching: "ARCH", occupied: "on the mat", empty: "empty", offline: "offline", unknown: "…" };
const pct = (c) => (c === null || c === undefined ? "–" : Math.round(c * 100) + "%");

let info = { gateway: "", own: [], commands: false, progress_reps: 15, arch_threshold: 0.6, pictures: false };

async function loadInfo() {
  try {
    const r = await fetch("/api/info", { cache: "no-store" });
    if (r.ok) info = await r.json();
  } catch (e) { /* the stream's reconnects will tell */ }
}

// ---- athletes: who is on the mat -------------------------------------------

// The roster (ids and display names) for the coach: null without the
// coach's cookie (the list is then not shown).
async function fetchRoster() {
  try {
    const r = await fetch("/api/roster", { cache: "no-store", credentials: "same-origin" });
    if (!r.ok) return null;
    return await r.json();
  } catch (e) {
    return null;
  }
}

// Names the athlete on `mat` (null: nobody, the next person is a guest).
async function assignAthlete(mat, id, out) {
  out.textContent = "sending…";
  try {
    const r = await fetch("/api/mat/" + encodeURIComponent(mat) + "/athlete", {
      method: "POST",
      body: new URLSearchParams({ athlete: id || "" }),
      credentials: "same-origin",
    });
    out.textContent = r.ok ? (id ? "sent" : "cleared") : "refused (" + r.status + ")";
    out.dataset.status = String(r.status);
  } catch (e) {
    out.textContent = "the gateway does not answer";
    out.dataset.status = "0";
  }
}

let floorRoster = null;

// ---- the floor -------------------------------------------------------------

function tileNode(t) {
  const n = el("article", "tile");
  n.dataset.id = t.id;
  const h = el("h2");
  const a = el("a", "name", t.label);
  a.href = "/mat/" + encodeURIComponent(t.gateway) + "/" + encodeURIComponent(t.mat);
  h.append(a, el("span", "status"));
  const meter = el("div", "meter");
  meter.append(el("div", "fill"), el("div", "mark"));
  const figs = el("div", "figures");
  for (const [k, label] of [["set", "set"], ["set_reps", "reps"], ["set_perfect", "perfect"]]) {
    const d = el("div");
    const b = el("b");
    b.dataset.k = k;
    d.append(b, el("span", null, label));
    figs.append(d);
  }
  const line = el("div", "line");
  const who = el("div", "who-tile");
  const log = el("ul", "log");
  n.append(h, meter, figs, who, line, log);
  if (t.own && floorRoster) {
    // The coach: assign or clear.
    const box = el("div", "assign");
    const sel = el("select", "assign-select");
    sel.setAttribute("aria-label", "athlete for " + t.mat);
    for (const a of floorRoster) {
      const o = el("option", null, a.name);
      o.value = a.id;
      sel.append(o);
    }
    const go = el("button", "assign-go", "assign");
    go.type = "button";
    const clear = el("button", "assign-clear", "clear");
    clear.type = "button";
    const out = el("span", "assign-result");
    go.addEventListener("click", () => assignAthlete(t.mat, sel.value, out));
    clear.addEventListener("click", () => assignAthlete(t.mat, null, out));
    box.append(sel, go, clear, out);
    n.append(box);
  }
  if (t.own) {
    const nav = el("nav");
    const g = el("a", null, "grid");
    g.href = "/grid/" + encodeURIComponent(t.mat);
    const p = el("a", null, "last sessions");
    p.href = "/pictures/" + encodeURIComponent(t.mat);
    nav.append(g, document.createTextNode(" · "), p);
    n.append(nav);
  }
  return n;
}

function drawTile(n, t) {
  if (n.dataset.status !== t.status) {
    n.classList.remove("arching", "occupied", "empty", "offline", "unknown");
    n.classList.add(t.status);
    n.dataset.status = t.status;
    // When this page showed the change (ms since the epoch) and in what
    // colour: the tests read it.
    n.dataset.statusAt = String(Date.now());
    const log = (window.flatbackChanges = window.flatbackChanges || []);
    log.push({ id: t.id, status: t.status, at: Date.now(), color: getComputedStyle(n).backgroundColor });
    if (log.length > 500) log.shift();
  }
  n.querySelector(".status").textContent = STATUS[t.status] || t.status;
  const who = n.querySelector(".who-tile");
  who.textContent = t.athlete ? "on the mat: " + t.athlete : "";
  who.dataset.athlete = t.athlete || "";
  const fill = n.querySelector(".fill");
  fill.style.width = t.contact === null ? "0%" : Math.min(100, t.contact * 100) + "%";
  n.querySelector(".mark").style.left = info.arch_threshold * 100 + "%";
  for (const b of n.querySelectorAll("b[data-k]")) b.textContent = String(t[b.dataset.k]);
  const line = n.querySelector(".line");
  line.textContent = "contact " + pct(t.contact) + " · total " + t.reps + " reps, " + t.perfect_reps + " perfect, " +
    t.arches + " arches";
  if (t.last_descent_s !== null) {
    const d = el("span", t.last_rushed ? "rushed" : null, " · last descent " + t.last_descent_s.toFixed(1) + " s" + (t.last_rushed ? " (rushed)" : ""));
    line.append(d);
  }
  const log = n.querySelector(".log");
  log.replaceChildren(...t.log.slice(0, 4).map((e) => el("li", e.tone, e.text)));
}

async function floorPage() {
  floorRoster = await fetchRoster();
  document.body.dataset.coach = floorRoster ? "1" : "0";
  $("coach-link").classList.toggle("hidden", !!floorRoster);
  const tiles = $("tiles");
  const nodes = new Map();
  const link = (l) => {
    const s = $("link");
    s.textContent = l.state === "connected" ? "broker connected" : l.state === "lost" ? "broker lost: " + l.why : "connecting…";
    s.classList.toggle("lost", l.state === "lost");
  };
  const upsert = (t) => {
    let n = nodes.get(t.id);
    if (!n) { n = tileNode(t); nodes.set(t.id, n); }
    drawTile(n, t);
    return n;
  };
  const es = new EventSource("/api/floor");
  es.addEventListener("floor", (m) => {
    const f = JSON.parse(m.data);
    link(f.link);
    const order = f.tiles.map(upsert);
    const keep = new Set(f.tiles.map((t) => t.id));
    for (const id of [...nodes.keys()]) if (!keep.has(id)) nodes.delete(id);
    tiles.replaceChildren(...order);
    $("empty").classList.toggle("hidden", f.tiles.length > 0);
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  });
  es.addEventListener("tiles", (m) => {
    for (const t of JSON.parse(m.data)) if (nodes.has(t.id)) upsert(t);
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  });
  es.onerror = () => link({ state: "lost", why: "the gateway does not answer; retrying" });
}

// ---- sound -------------------------------------------------------------------

const sound = { ctx: null, on: false, spoken: 0 };
const WORDS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];

function startSound() {
  // Browsers allow sound only after a gesture: this button is it.
  if (!sound.ctx) {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (AC) sound.ctx = new AC();
  }
  if (sound.ctx && sound.ctx.state === "suspended") sound.ctx.resume();
  sound.on = true;
  const b = $("sound");
  b.textContent = "Sound on";
  b.classList.add("on");
  say("ready");
}

function chime() {
  document.body.dataset.chimes = String(Number(document.body.dataset.chimes || 0) + 1);
  if (!sound.on || !sound.ctx) return;
  const t = sound.ctx.currentTime;
  for (const [f, at] of [[880, 0], [660, 0.16]]) {
    const o = sound.ctx.createOscillator();
    const g = sound.ctx.createGain();
    o.type = "triangle";
    o.frequency.value = f;
    g.gain.setValueAtTime(0.0001, t + at);
    g.gain.exponentialRampToValueAtTime(0.5, t + at + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, t + at + 0.35);
    o.connect(g).connect(sound.ctx.destination);
    o.start(t + at);
    o.stop(t + at + 0.4);
  }
}

function say(text) {
  document.body.dataset.said = text;
  if (!sound.on || !window.speechSynthesis) return;
  const u = new SpeechSynthesisUtterance(text);
  u.rate = 1.1;
  window.speechSynthesis.cancel();
  window.speechSynthesis.speak(u);
}

// ---- one mat -------------------------------------------------------------------

function tokenValue() { return localStorage.getItem("flatback-token") || ""; }

async function sendCommand(mat, name) {
  const out = $("command-result");
  out.textContent = "sending…";
  const headers = {};
  const token = tokenValue();
  if (token) headers["Authorization"] = "Bearer " + token;
  try {
    const r = await fetch("/api/mat/" + encodeURIComponent(mat) + "/command/" + name, { method: "POST", headers });
    const body = await r.json().catch(() => ({}));
    out.textContent = r.ok ? name.replace("_", " ") + ": sent" : "refused (" + r.status + "): " + (body.error || "");
    out.dataset.status = String(r.status);
  } catch (e) {
    out.textContent = "the gateway does not answer";
    out.dataset.status = "0";
  }
}

async function whoIsTraining(mat) {
  const box = $("who");
  const roster = await fetchRoster();
  if (!roster) {
    box.classList.add("hidden");
    box.dataset.roster = "none";
    return;
  }
  const out = $("who-result");
  const buttons = roster.map((a) => {
    const b = el("button", "who-name", a.name);
    b.type = "button";
    b.dataset.athlete = a.id;
    b.addEventListener("click", () => assignAthlete(mat, a.id, out));
    return b;
  });
  const clear = el("button", "who-clear", "Nobody (a guest)");
  clear.type = "button";
  clear.id = "who-clear";
  clear.addEventListener("click", () => assignAthlete(mat, null, out));
  $("who-list").replaceChildren(...buttons, clear);
  box.classList.remove("hidden");
  box.dataset.roster = String(roster.length);
}

function matPage() {
  const [, , gateway, mat] = location.pathname.split("/").map(decodeURIComponent);
  $("title").textContent = mat + (gateway === info.gateway ? "" : " @" + gateway);
  document.title = "flatback: " + mat;
  const own = gateway === info.gateway && info.own.includes(mat);
  $("bill-mark").style.left = info.arch_threshold * 100 + "%";
  $("sound").addEventListener("click", startSound);
  if (own) {
    $("own-links").classList.remove("hidden");
    $("grid-link").href = "/grid/" + encodeURIComponent(mat);
    $("pictures-link").href = "/pictures/" + encodeURIComponent(mat);
  } else {
    $("foreign").classList.remove("hidden");
  }
  const can = own && info.commands;
  $("readonly").classList.toggle("hidden", info.commands || !own);
  $("token-form").classList.toggle("hidden", !can);
  $("token").value = tokenValue();
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = $("token").value.trim();
    localStorage.setItem("flatback-token", token);
    $("command-result").textContent = "token kept on this device";
    // The same token as the coach's cookie: the roster for "Who's training?".
    fetch("/login", { method: "POST", body: new URLSearchParams({ token }), credentials: "same-origin" })
      .then(() => whoIsTraining(mat))
      .catch(() => {});
  });
  if (own) whoIsTraining(mat);
  for (const b of document.querySelectorAll("button[data-command]")) {
    b.disabled = !can;
    b.addEventListener("click", () => sendCommand(mat, b.dataset.command));
  }

  let arching = false;
  let tile = null;
  let live = null;
  const draw = () => {
    const nowArching = (tile && tile.status === "arching") || (live && live.in_arch);
    if (nowArching && !arching) chime();
    arching = !!nowArching;
    const contact = live && live.contact !== null && live.contact !== undefined ? live.contact : tile ? tile.contact : null;
    const bill = $("bill");
    const status = arching ? "arching" : tile ? tile.status : "unknown";
    bill.className = "bill " + status;
    bill.dataset.statusAt = bill.dataset.status === status ? bill.dataset.statusAt : String(Date.now());
    bill.dataset.status = status;
    $("bill-fill").style.width = contact === null ? "0%" : Math.min(100, contact * 100) + "%";
    $("bill-text").textContent = arching ? "BILL PULLED: press the back down" :
      status === "occupied" ? "contact " + pct(contact) : status === "offline" ? "mat offline" :
      status === "empty" ? "nobody on the mat" : "waiting for the mat…";
    if (tile) {
      $("set-perfect").textContent = String(tile.set_perfect);
      $("set").textContent = String(tile.set);
      $("set-reps").textContent = String(tile.set_reps);
      $("descent").textContent = tile.last_descent_s === null ? "–" : tile.last_descent_s.toFixed(1) + " s" + (tile.last_rushed ? " (rushed)" : "");
      $("ready").classList.toggle("hidden", tile.set_perfect < info.progress_reps);
      $("athlete-now").textContent = tile.athlete ? "on the mat: " + tile.athlete : "";
      $("athlete-now").dataset.athlete = tile.athlete || "";
    }
    // The descent counted aloud, a number a second.
    const d = live ? live.descent_ms : null;
    if (d === null || d === undefined) {
      sound.spoken = 0;
      $("counting").textContent = "";
    } else {
      const n = Math.floor(d / 1000) + 1;
      if (n !== sound.spoken && n <= WORDS.length) {
        sound.spoken = n;
        $("counting").textContent = WORDS[n - 1] + "…";
        say(WORDS[n - 1]);
      }
    }
  };
  const es = new EventSource("/api/mat/" + encodeURIComponent(gateway) + "/" + encodeURIComponent(mat));
  es.addEventListener("tile", (m) => { tile = JSON.parse(m.data); draw(); });
  es.addEventListener("live", (m) => { live = JSON.parse(m.data); draw(); });
  es.onerror = () => { $("bill-text").textContent = "the gateway does not answer; retrying"; };
}

// ---- the grid ----------------------------------------------------------------

function gridPage() {
  const mat = decodeURIComponent(location.pathname.split("/")[2]);
  $("title").textContent = mat + ": the grid";
  const table = $("heat");
  let cells = [];
  const es = new EventSource("/api/mat/" + encodeURIComponent(info.gateway) + "/" + encodeURIComponent(mat));
  es.addEventListener("live", (m) => {
    const l = JSON.parse(m.data);
    if (cells.length !== l.counts.length) {
      table.replaceChildren();
      const head = el("tr");
      head.append(el("th"));
      for (let c = 0; c < l.cols; c++) head.append(el("th", null, "c" + c));
      table.append(head);
      cells = [];
      for (let r = 0; r < l.rows; r++) {
        const tr = el("tr");
        tr.append(el("th", null, "r" + r));
        for (let c = 0; c < l.cols; c++) {
          const td = el("td");
          td.dataset.taxel = "r" + r + "c" + c;
          tr.append(td);
          cells.push(td);
        }
        table.append(tr);
      }
    }
    l.counts.forEach((v, i) => {
      const x = Math.max(0, Math.min(1, v / l.full_scale));
      // White (nothing) to deep blue (full scale).
      const light = Math.round(96 - x * 60);
      cells[i].style.background = "hsl(215, 80%, " + light + "%)";
      cells[i].style.color = light < 60 ? "#fff" : "#000";
      cells[i].textContent = String(v);
    });
    $("stamp").textContent = "t = " + (l.t_ms / 1000).toFixed(1) + " s";
    $("grid-state").textContent = !l.occupied ? "nobody on the mat" : l.settled ? "contact " + pct(l.contact) + (l.in_arch ? " · ARCH" : "") : "settling…";
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  });
}

// ---- pictures ----------------------------------------------------------------

async function picturesPage() {
  const mat = decodeURIComponent(location.pathname.split("/")[2]);
  $("title").textContent = mat + ": last sessions";
  const r = await fetch("/api/pictures/" + encodeURIComponent(mat), { cache: "no-store" });
  const list = await r.json();
  const note = $("pictures-note");
  if (!list.built_in) {
    note.textContent = "Pictures are not built into this gateway (cargo feature plot).";
    return;
  }
  note.textContent = list.pictures.length ? "Newest first; drawn when the person gets up." : "No session has ended on this mat since the gateway started.";
  $("pictures").replaceChildren(...list.pictures.map((p) => {
    const f = el("figure");
    const img = el("img");
    img.src = "/api/pictures/" + encodeURIComponent(mat) + "/" + p.n + ".svg";
    img.alt = p.title;
    f.append(el("figcaption", null, p.title), img);
    return f;
  }));
}

document.addEventListener("DOMContentLoaded", async () => {
  // A link with #token=... (`flatback demo` prints one) keeps the token on
  // this device and leaves the address bar; a fragment is never sent.
  if (location.hash.startsWith("#token=")) {
    localStorage.setItem("flatback-token", decodeURIComponent(location.hash.slice(7)));
    history.replaceState(null, "", location.pathname + location.search);
  }
  await loadInfo();
  const page = document.body.dataset.page;
  if (page === "floor") await floorPage();
  else if (page === "mat") matPage();
  else if (page === "grid") gridPage();
  else if (page === "pictures") picturesPage();
  document.body.dataset.ready = "1";
});
