// Vigil's page: one vanilla script, no framework, no build step.
// Views follow the location hash: #/live, #/camera/NAME, #/recordings/NAME,
// #/cameras, #/status, #/users, #/login. Every failure is said in words.
"use strict";

const main = document.getElementById("main");
const bannerEl = document.getElementById("banner");
// A browser opens at most 6 connections to one server over HTTP/1.1, and
// each MJPEG <img> holds one for as long as it shows: past this many
// cameras the grid polls snapshots instead, leaving room for the API.
const MAX_MJPEG = 4;
// A transparent 1x1 GIF: pointing an <img> at it ends its MJPEG stream.
const BLANK = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";
const MAX_BOX = 16 << 20;

let authOn = false; // the server asks for logins (http.auth)
let me = null; // {name, role} once logged in
let next = "#/live"; // where to go after logging in
let leave = []; // what the current view undoes when left: timers, streams
let gen = 0; // bumped on every navigation: late answers of a left view are dropped

// ---- Small helpers

const enc = encodeURIComponent;
const pad = (n) => String(n).padStart(2, "0");
const hm = (t) => { const d = new Date(t); return pad(d.getHours()) + ":" + pad(d.getMinutes()); };
const hms = (t) => hm(t) + ":" + pad(new Date(t).getSeconds());
const ymd = (d) => d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
const when = (s) => { const t = Date.parse(s); return ymd(new Date(t)) + " " + hm(t); };
const iso = (t) => new Date(Math.round(t)).toISOString();
const isAdmin = () => !authOn || (me && me.role === "admin");

function el(tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k[0] === ".") e[k.slice(1)] = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of kids.flat()) if (c != null && c !== false) e.append(c);
  return e;
}

const td = (x, cls) => el("td", { class: cls }, x);
// A table that scrolls sideways on a phone; heads starting with # are numbers.
const table = (id, heads, rows) => el("div", { class: "scroll" }, el("table", { id },
  el("thead", {}, el("tr", {}, heads.map((h) => el("th", { class: h[0] === "#" && "num", text: h.replace("#", "") })))),
  el("tbody", {}, rows)));

// A delete button that asks twice: a second click within 4 s.
function delButton(fn) {
  const b = el("button", { type: "button", class: "danger", text: "Delete" });
  b.onclick = () => {
    if (b.dataset.armed) return fn();
    b.dataset.armed = 1;
    b.textContent = "Really delete?";
    setTimeout(() => { delete b.dataset.armed; b.textContent = "Delete"; }, 4000);
  };
  return b;
}

function fmtBytes(n) {
  if (n == null) return "–";
  const u = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + " " + u[i];
}

function fmtDur(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return s + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min " + (s % 60) + " s";
  const h = Math.floor(m / 60);
  if (h < 48) return h + " h " + (m % 60) + " min";
  return Math.floor(h / 24) + " days " + (h % 24) + " h";
}

// An error stays until the next view; news of a change (`info`) is
// given just before the view is drawn again, so it stays one view longer.
function banner(msg, info) {
  bannerEl.className = info ? "info" : "";
  bannerEl.firstChild.textContent = msg || "";
  bannerEl.hidden = !msg;
  bannerEl.dataset.keep = info ? 1 : "";
}
bannerEl.lastChild.onclick = () => banner("");

function every(ms, fn) {
  const t = setInterval(fn, ms);
  leave.push(() => clearInterval(t));
}

// ---- The API

class HttpError extends Error {
  constructor(status, msg, field) { super(msg); this.status = status; this.field = field; }
}

// A failed answer in the server's own words ({"error": "...", "field": ...}).
async function failure(r) {
  let m = "", field;
  try {
    const t = await r.text();
    try { ({ error: m, field } = JSON.parse(t)); } catch { m = t.slice(0, 200); }
  } catch { /* the body broke off: the status says enough */ }
  const what = r.status >= 500 ? "The server failed: " : r.status === 403 ? "Not allowed: " : "";
  return new HttpError(r.status, what + (m || r.statusText || "no reason given") + " (HTTP " + r.status + ")", field);
}
const errorText = async (r) => (await failure(r)).message;

async function api(method, path, body) {
  let r;
  try {
    r = await fetch(path, {
      method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    throw new HttpError(0, "Cannot reach Vigil: " + e.message + ". Is it running, and is the network up?");
  }
  if (r.status === 401 && path !== "/api/login") {
    loggedOut();
    throw new HttpError(401, "Please log in.");
  }
  if (!r.ok) throw await failure(r);
  if (r.status === 204) return null;
  return (r.headers.get("Content-Type") || "").includes("json") ? r.json() : r.text();
}

const getStatus = () => api("GET", "/api/status");

// Why an <img> or <video> URL failed: media elements do not say, so the
// URL is asked again and its JSON error read (one byte of it if it works).
async function explain(url) {
  try {
    const r = await fetch(url, { headers: { Range: "bytes=0-0" } });
    if (r.ok) { r.body && r.body.cancel().catch(() => {}); return ""; }
    if (r.status === 401) loggedOut();
    return errorText(r);
  } catch (e) {
    return "Cannot reach Vigil: " + e.message;
  }
}

function stateWords(s) {
  if (!s) return "";
  if (s.state === "streaming") return "";
  return "Camera " + s.state + (s.last_error ? ": " + s.last_error : "") + ".";
}

// ---- Logging in and out

function setUser(user) {
  me = user;
  document.body.classList.toggle("viewer", !isAdmin());
  const who = document.getElementById("who");
  if (!authOn) who.replaceChildren(el("span", { title: "http.auth = false: anyone who reaches this page may do everything", text: "logins off" }));
  else if (me) who.replaceChildren(
    el("span", { text: me.name + " (" + me.role + ")" }),
    el("button", { type: "button", onclick: logout, text: "Log out" }));
  else who.replaceChildren();
}

function loggedOut() {
  authOn = true;
  setUser(null);
  if (!location.hash.startsWith("#/login")) {
    next = location.hash || "#/live";
    location.hash = "#/login";
  }
}

async function logout() {
  try { await api("POST", "/api/logout"); } catch (e) { banner(e.message); }
  loggedOut();
  // The next user starts afresh, not where this one left.
  next = "#/live";
}

async function loginView() {
  if (!authOn) {
    main.append(el("p", { class: "muted" }, "Logins are off on this Vigil (http.auth = false). ", el("a", { href: "#/live", text: "Go to the cameras" })));
    return;
  }
  document.body.classList.add("out");
  leave.push(() => document.body.classList.remove("out"));
  const err = el("p", { class: "err", role: "alert" });
  const user = el("input", { name: "username", autocomplete: "username", required: true, autocapitalize: "off" });
  const pass = el("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const btn = el("button", { class: "primary", type: "submit", text: "Log in" });
  const form = el("form", {
    onsubmit: async (ev) => {
      ev.preventDefault();
      btn.disabled = true;
      err.textContent = "";
      try {
        const r = await api("POST", "/api/login", { username: user.value, password: pass.value });
        setUser({ name: r.user, role: r.role });
        location.hash = next.startsWith("#/login") ? "#/live" : next;
      } catch (e) {
        err.textContent = e.status === 401 ? "Wrong user name or password." : e.message;
        pass.select();
      } finally {
        btn.disabled = false;
      }
    },
  }, el("label", {}, "User name", user), el("label", {}, "Password", pass), btn, err);
  main.append(el("div", { class: "login panel" }, el("h1", { text: "Log in to Vigil" }), form));
  user.focus();
}

// ---- Live: the grid

async function liveView() {
  const my = gen;
  const s = await getStatus();
  if (my !== gen) return;
  const cams = s.cameras || [];
  main.append(el("h1", { text: "Live" }));
  if (!cams.length) {
    main.append(el("p", { class: "muted" }, "No cameras yet. ",
      isAdmin() ? el("a", { href: "#/cameras", text: "Add one." }) : "An admin can add one."));
    return;
  }
  const snap = cams.length > MAX_MJPEG;
  if (snap) main.append(el("p", { class: "muted small", text: cams.length + " cameras: the pictures refresh every second. Open a camera for smooth live video." }));
  const tiles = cams.map((c) => tile(c, snap));
  main.append(el("div", { class: "grid-cams" }, tiles.map((t) => t.root)));
  every(5000, async () => {
    try {
      const s = await getStatus();
      for (const t of tiles) t.update((s.cameras || []).find((c) => c.name === t.name));
    } catch (e) { banner("Cannot read the cameras' state: " + e.message); }
  });
  // Nobody looks at a hidden tab: its streams stop, sparing the server.
  const vis = () => tiles.forEach((t) => (document.hidden ? t.stop() : t.start()));
  document.addEventListener("visibilitychange", vis);
  leave.push(() => { document.removeEventListener("visibilitychange", vis); tiles.forEach((t) => t.stop()); });
  if (!document.hidden) tiles.forEach((t) => t.start());
}

// The sub stream is smaller to decode and to send: the grid prefers it.
const previewStream = (c) => (c.streams.some((s) => s.stream === "sub") ? "sub" : "main");

function tile(c, snap) {
  const stream = previewStream(c);
  const base = "/api/cameras/" + enc(c.name) + "/";
  const img = el("img", { alt: c.name + ", live" });
  const note = el("div", { class: "note", hidden: true });
  const dot = el("span", { class: "dot" });
  const meta = el("span", { class: "meta" });
  const link = "#/camera/" + enc(c.name);
  const root = el("div", { class: "cam", "data-camera": c.name },
    el("a", { class: "pic", href: link, title: "Open " + c.name }, img, note),
    el("div", { class: "bar" }, dot, el("a", { class: "name", href: link, text: c.name }), meta,
      el("a", { class: "small", href: "#/recordings/" + enc(c.name), text: "Recordings" })));
  let on = false, timer = 0, fails = 0, st = c;
  // A broken <img> shows an icon and its alt text: the note replaces it.
  const say = (m) => { note.textContent = m; note.hidden = !m; img.hidden = !!m; };
  const load = () => {
    img.src = snap ? base + "snapshot.jpg?stream=" + stream + "&t=" + Date.now() : base + "mjpeg?stream=" + stream;
  };
  img.onload = () => {
    if (!on) return;
    fails = 0;
    say("");
    if (snap) timer = setTimeout(load, 1000);
  };
  img.onerror = async () => {
    if (!on) return;
    const why = await explain(base + "snapshot.jpg?stream=" + stream);
    const s = st.streams.find((x) => x.stream === stream);
    say(why || stateWords(s) || "The picture stopped; trying again…");
    fails++;
    if (on) timer = setTimeout(load, Math.min(30000, 2000 * fails));
  };
  const t = {
    name: c.name,
    root,
    start() { if (!on) { on = true; load(); } },
    stop() { on = false; clearTimeout(timer); img.src = BLANK; },
    update(nc) {
      if (!nc) { say("This camera was removed."); return; }
      st = nc;
      const s = nc.streams.find((x) => x.stream === stream) || nc.streams[0] || {};
      dot.className = "dot " + (s.state || "");
      dot.title = s.state || "";
      meta.textContent = [s.width ? s.width + "×" + s.height : "", s.codec, s.fps ? Math.round(s.fps) + " fps" : ""].filter(Boolean).join(" · ");
      if (s.state && s.state !== "streaming" && !note.hidden) say(stateWords(s));
    },
  };
  t.update(c);
  return t;
}

// ---- Live: one camera, fMP4 over Media Source Extensions, else MJPEG

async function cameraView(name, q) {
  const my = gen;
  const s = await getStatus();
  if (my !== gen) return;
  const c = (s.cameras || []).find((c) => c.name === name);
  if (!c) {
    main.append(el("h1", { text: name }), el("p", { class: "err", text: "There is no camera named “" + name + "”." }),
      el("a", { href: "#/live", text: "All cameras" }));
    return;
  }
  const streams = c.streams.map((x) => x.stream);
  const stream = streams.includes(q.get("stream")) ? q.get("stream") : streams[0] || "main";
  const st = c.streams.find((x) => x.stream === stream) || {};
  const base = "/api/cameras/" + enc(name) + "/";
  const how = el("span", { class: "muted small", id: "how" });
  const note = el("div", { class: "note", hidden: true });
  const stage = el("div", { class: "stage" }, note);
  main.append(
    el("div", { class: "row" },
      el("h1", { class: "grow" }, el("span", { class: "dot " + (st.state || ""), title: st.state || "" }), " ", name),
      streams.length > 1 && el("span", { class: "seg-btns" }, streams.map((k) =>
        el("a", { class: "btn" + (k === stream ? " on" : ""), href: "#/camera/" + enc(name) + "?stream=" + k, text: k === "main" ? "Main" : "Sub" }))),
      el("a", { class: "btn", href: "#/recordings/" + enc(name) + "?stream=" + stream, text: "Recordings" }),
      el("a", { class: "btn", href: base + "snapshot.jpg?stream=" + stream, download: name + "-" + Date.now() + ".jpg", text: "Snapshot" })),
    stage,
    el("p", {}, how));
  const say = (m) => { note.textContent = m; note.hidden = !m; };
  let stop = null;
  const start = () => { if (!stop) stop = playLive(stage, base, stream, st, say, (m) => (how.textContent = m)); };
  const halt = () => { if (stop) stop(); stop = null; };
  const vis = () => (document.hidden ? halt() : start());
  document.addEventListener("visibilitychange", vis);
  leave.push(() => { document.removeEventListener("visibilitychange", vis); halt(); });
  if (!document.hidden) start();
}

// Plays `stream` live in `stage`; returns the function that stops it.
function playLive(stage, base, stream, st, say, how) {
  const ac = new AbortController();
  let media = null;
  const put = (m) => { if (media) media.remove(); media = m; stage.prepend(m); };
  const mjpeg = (why) => {
    const img = el("img", { alt: "live picture" });
    img.onload = () => { say(""); img.hidden = false; };
    img.onerror = async () => {
      if (ac.signal.aborted) return;
      img.hidden = true;
      say((await explain(base + "snapshot.jpg?stream=" + stream)) || stateWords(st) || "The picture stopped.");
      setTimeout(() => { if (!ac.signal.aborted) img.src = base + "mjpeg?stream=" + stream + "&t=" + Date.now(); }, 3000);
    };
    img.src = base + "mjpeg?stream=" + stream;
    put(img);
    how("Live as MJPEG" + (why ? " — smooth live video is not available here: " + why : "."));
  };
  // A JPEG stream has no fMP4 form: MJPEG is its live view.
  if (st.codec === "jpeg") mjpeg("");
  else (async () => {
    let fails = 0;
    while (!ac.signal.aborted) {
      const video = el("video", { ".muted": true, ".autoplay": true, playsinline: true, "aria-label": "live video" });
      put(video);
      try {
        const frags = await mseLive(video, base + "live.mp4?stream=" + stream, ac.signal, (codec) => {
          how("Live video: fMP4 over Media Source Extensions, " + codec + ".");
          say("");
        });
        if (frags) fails = 0;
        // The stream ended (new codec parameters, or the camera paused):
        // a new request brings a new init segment.
        if (!ac.signal.aborted) say("The live stream ended; reconnecting…");
      } catch (e) {
        if (ac.signal.aborted) return;
        // No MSE or no codec support, or the server refuses: MJPEG instead.
        if (e.unsupported || (e.status >= 400 && e.status < 500) || ++fails >= 3) {
          mjpeg(e.message);
          return;
        }
        say(e.message + " Retrying…");
      }
      await new Promise((r) => setTimeout(r, 1000 + 1000 * fails));
    }
  })();
  return () => {
    ac.abort();
    if (media) { if (media.tagName === "IMG") media.src = BLANK; else media.removeAttribute("src"); media.remove(); }
  };
}

function unsupported(msg) {
  const e = new Error(msg);
  e.unsupported = true;
  return e;
}

function concat(a, b) {
  if (!a.length) return b;
  const c = new Uint8Array(a.length + b.length);
  c.set(a);
  c.set(b, a.length);
  return c;
}

const u32 = (d, o) => ((d[o] << 24) | (d[o + 1] << 16) | (d[o + 2] << 8) | d[o + 3]) >>> 0;
const fourcc = (d, o) => String.fromCharCode(d[o], d[o + 1], d[o + 2], d[o + 3]);

// The payload [start, end) of the first box named `type` among the boxes
// lying in d[from, to), or null.
function child(d, from, to, type) {
  for (let o = from; o + 8 <= to;) {
    const n = u32(d, o);
    if (n < 8 || o + n > to) return null;
    if (fourcc(d, o + 4) === type) return [o + 8, o + n];
    o += n;
  }
  return null;
}

// The RFC 6381 codec string of the init segment's video track, built from
// its avcC or hvcC (ISO/IEC 14496-15): what MSE needs to pick a decoder.
function codecOf(moov) {
  let b = [8, moov.length];
  for (const t of ["trak", "mdia", "minf", "stbl", "stsd"]) {
    b = child(moov, b[0], b[1], t);
    if (!b) throw new Error("the live stream's header has no " + t + " box");
  }
  // stsd: version, flags and entry count, then the first sample entry,
  // whose boxes follow 78 bytes of VisualSampleEntry fields.
  const o = b[0] + 8;
  if (o + 8 > b[1]) throw new Error("the live stream's header has no sample entry");
  const kind = fourcc(moov, o + 4), end = o + u32(moov, o);
  const avc = child(moov, o + 86, end, "avcC");
  if (avc && avc[1] - avc[0] >= 4) {
    const h = (i) => moov[avc[0] + i].toString(16).padStart(2, "0");
    return kind + "." + h(1) + h(2) + h(3);
  }
  const hv = child(moov, o + 86, end, "hvcC");
  if (hv && hv[1] - hv[0] >= 13) {
    const d = moov.subarray(hv[0]);
    const space = d[1] >> 6, tier = (d[1] >> 5) & 1, profile = d[1] & 31;
    let flags = u32(d, 2), rev = 0;
    for (let i = 0; i < 32; i++) { rev = (rev << 1) | (flags & 1); flags >>>= 1; }
    const cons = Array.from(d.subarray(6, 12));
    while (cons.length && !cons[cons.length - 1]) cons.pop();
    return [kind, (space ? "ABC"[space - 1] : "") + profile, (rev >>> 0).toString(16).toUpperCase(),
      (tier ? "H" : "L") + d[12], ...cons.map((x) => x.toString(16).toUpperCase())].join(".");
  }
  throw unsupported("the camera's codec (" + kind + ") is not one browsers play");
}

// Reads live.mp4 (an init segment, then a moof+mdat per frame, until the
// connection ends) and feeds it to `video` through a SourceBuffer. Returns
// the number of fragments played when the stream ends; throws on failure.
async function mseLive(video, url, signal, onCodec) {
  if (!window.MediaSource) throw unsupported("this browser has no Media Source Extensions.");
  const r = await fetch(url, { signal });
  if (r.status === 401) loggedOut();
  if (!r.ok) throw await failure(r);
  const reader = r.body.getReader();
  let buf = new Uint8Array(0), init = new Uint8Array(0), moof = null;
  let sb = null, failed = null, frags = 0, started = false;
  const queue = [];
  const ms = new MediaSource();

  const tidy = () => {
    const b = video.buffered;
    if (!b.length) return;
    const end = b.end(b.length - 1), first = b.start(0);
    if (!started && end > first) { started = true; video.currentTime = first; video.play().catch(() => {}); }
    // Behind by more than a moment (a slow tab, a stall): jump to the live edge.
    if (end - video.currentTime > 3) video.currentTime = Math.max(first, end - 0.5);
    // Keep half a minute behind the playhead: bounded memory on a long watch.
    if (!sb.updating && video.currentTime - first > 60) sb.remove(first, video.currentTime - 30);
  };
  const pump = () => {
    if (!sb || sb.updating || !queue.length || failed) return;
    if (ms.readyState !== "open") { failed = new Error("The browser closed the live video."); return; }
    try { sb.appendBuffer(queue.shift()); } catch (e) { failed = new Error("The browser refused the live video: " + e.message); }
  };
  const take = () => {
    if (buf.length < 8) return null;
    let n = u32(buf, 0), head = 8;
    if (n === 1) {
      if (buf.length < 16) return null;
      n = u32(buf, 8) * 4294967296 + u32(buf, 12);
      head = 16;
    }
    if (n < head || n > MAX_BOX) throw new Error("The live stream is garbled (a box of " + n + " bytes).");
    if (buf.length < n) return null;
    const box = { type: fourcc(buf, 4), data: buf.slice(0, n) };
    buf = buf.subarray(n);
    return box;
  };

  for (;;) {
    if (failed) throw failed;
    const box = take();
    if (!box) {
      const { value, done } = await reader.read();
      if (done) return frags;
      buf = concat(buf, value);
      continue;
    }
    if (box.type === "ftyp") init = box.data;
    else if (box.type === "moov") {
      const codec = codecOf(box.data);
      const mime = 'video/mp4; codecs="' + codec + '"';
      if (!MediaSource.isTypeSupported(mime)) throw unsupported("this browser cannot play " + codec + " video.");
      const src = URL.createObjectURL(ms);
      video.src = src;
      await new Promise((ok, no) => {
        ms.addEventListener("sourceopen", ok, { once: true });
        setTimeout(() => no(new Error("The browser did not open the video.")), 5000);
      });
      URL.revokeObjectURL(src);
      sb = ms.addSourceBuffer(mime);
      sb.addEventListener("updateend", () => { tidy(); pump(); });
      sb.addEventListener("error", () => (failed = new Error("The browser could not decode the live video.")));
      video.addEventListener("error", () => (failed = new Error("The browser could not play the live video" + (video.error && video.error.message ? ": " + video.error.message : "."))));
      queue.push(concat(init, box.data));
      pump();
      onCodec(codec);
    } else if (box.type === "moof") moof = box.data;
    else if (box.type === "mdat" && moof && sb) {
      queue.push(concat(moof, box.data));
      moof = null;
      frags++;
      // A browser that cannot keep up: start again at the live edge rather
      // than hold ever more frames.
      if (queue.length > 300) throw new Error("The browser fell behind the live video.");
      pump();
    }
    // `free` boxes (sent while no frame comes) and anything else: skipped.
  }
}

// ---- Recordings: the day timeline, playback and downloads

async function recordingsView(name, q) {
  const my = gen;
  const s = await getStatus();
  if (my !== gen) return;
  const cams = s.cameras || [];
  if (!name) {
    if (cams.length) location.replace("#/recordings/" + enc(cams[0].name));
    else main.append(el("h1", { text: "Recordings" }), el("p", { class: "muted", text: "No cameras yet." }));
    return;
  }
  const cam = cams.find((c) => c.name === name);
  const streams = cam ? cam.streams.map((x) => x.stream) : ["main", "sub"];
  const stream = streams.includes(q.get("stream")) ? q.get("stream") : streams[0] || "main";
  const dayStr = /^\d{4}-\d\d-\d\d$/.test(q.get("day") || "") ? q.get("day") : ymd(new Date());
  const [y, m, d] = dayStr.split("-").map(Number);
  const t0 = new Date(y, m - 1, d).getTime(), t1 = new Date(y, m - 1, d + 1).getTime();
  const base = "/api/cameras/" + enc(name) + "/";
  const go = (o) => {
    const p = { stream, day: dayStr, ...o };
    location.hash = "#/recordings/" + enc(o.name || name) + "?stream=" + p.stream + "&day=" + p.day;
  };
  const shift = (n) => go({ day: ymd(new Date(y, m - 1, d + n)) });

  main.append(el("div", { class: "row" },
    el("h1", { class: "grow", text: "Recordings" }),
    el("label", {}, "Camera", el("select", { onchange: (e) => go({ name: e.target.value, stream: "main" }) },
      (cam ? cams : [{ name }, ...cams]).map((c) => el("option", { value: c.name, selected: c.name === name, text: c.name })))),
    el("label", {}, "Stream", el("select", { onchange: (e) => go({ stream: e.target.value }) },
      streams.map((k) => el("option", { value: k, selected: k === stream, text: k })))),
    el("label", {}, "Day", el("input", { type: "date", value: dayStr, onchange: (e) => e.target.value && go({ day: e.target.value }) })),
    el("span", {}, el("button", { type: "button", onclick: () => shift(-1), title: "Previous day", text: "◀" }), " ",
      el("button", { type: "button", onclick: () => go({ day: ymd(new Date()) }), text: "Today" }), " ",
      el("button", { type: "button", onclick: () => shift(1), title: "Next day", text: "▶" }))));

  let rs = [], runs = [];
  const load = async () => {
    const recs = await api("GET", base + "recordings?stream=" + stream + "&start=" + Math.floor(t0 / 1000) + "&end=" + Math.ceil(t1 / 1000));
    // Times in ms; recordings less than 1.5 s apart make one run.
    rs = recs.map((r) => ({ s: r.start_90k / 90, e: r.end_90k / 90, bytes: r.bytes, gaps: r.gaps, r })).sort((a, b) => a.s - b.s);
    runs = [];
    for (const r of rs) {
      const last = runs[runs.length - 1];
      if (last && r.s - last.e < 1500) { last.e = Math.max(last.e, r.e); last.bytes += r.bytes; last.gaps += r.gaps; }
      else runs.push({ s: r.s, e: r.e, bytes: r.bytes, gaps: r.gaps, r: r.r });
    }
  };
  await load();
  if (my !== gen) return;

  // The visible window: the whole day, or zoomed in around a moment.
  const ZOOMS = [86400e3, 6 * 3600e3, 3600e3, 600e3, 60e3];
  let zoom = 0, w0 = t0, w1 = t1, sel = null, playing = null, head = null;
  const tl = el("div", { class: "tl", id: "timeline", title: "Click to play from that moment; drag to choose a range" });
  const zoomTo = (z, at) => {
    zoom = Math.max(0, Math.min(ZOOMS.length - 1, z));
    const w = Math.min(ZOOMS[zoom], t1 - t0);
    w0 = Math.max(t0, Math.min(t1 - w, at - w / 2));
    w1 = w0 + w;
    draw();
  };
  const pan = (f) => zoomTo(zoom, (w0 + w1) / 2 + f * (w1 - w0));
  const x = (t) => ((Math.max(w0, Math.min(w1, t)) - w0) / (w1 - w0)) * 100 + "%";
  const place = (e, a, b) => { e.style.left = x(a); e.style.width = "calc(" + x(b) + " - " + x(a) + ")"; };
  const selEl = el("div", { class: "sel", hidden: true });
  const headEl = el("div", { class: "head", hidden: true });

  function draw() {
    const span = w1 - w0;
    const step = [10e3, 30e3, 60e3, 300e3, 900e3, 3600e3].find((s) => span / s <= 16) || 3600e3;
    const ticks = [];
    // Ticks on round local times: the zone's offset is a whole number of
    // quarter hours, which every step below an hour divides.
    const off = step < 3600e3 ? 0 : -new Date(w0).getTimezoneOffset() * 60e3;
    for (let t = Math.ceil((w0 + off) / step) * step - off; t < w1; t += step) {
      const odd = Math.round((t + off) / step) % 2;
      // A label at either end would stick out of the page.
      const px = ((t - w0) / span) * tl.clientWidth, label = px > 28 && px < tl.clientWidth - 28;
      const k = el("div", { class: "tick" + (odd ? " odd" : "") }, label && el("span", { text: step < 60e3 ? hms(t) : hm(t) }));
      k.style.left = x(t);
      ticks.push(k);
    }
    const bars = [];
    for (const r of runs) {
      if (r.e < w0 || r.s > w1) continue;
      const b = el("div", { class: "run", title: hms(r.s) + " – " + hms(r.e) });
      place(b, r.s, r.e);
      bars.push(b);
    }
    for (const r of rs) {
      if (!r.gaps || r.e < w0 || r.s > w1) continue;
      const b = el("div", { class: "gap", title: "Frames missing between " + hms(r.s) + " and " + hms(r.e) });
      place(b, r.s, r.e);
      bars.push(b);
    }
    const now = Date.now();
    const nowEl = now > w0 && now < w1 && el("div", { class: "now", title: "now" });
    if (nowEl) nowEl.style.left = x(now);
    tl.replaceChildren(...ticks, ...bars, nowEl || "", selEl, headEl);
    showSel();
    showHead();
    const f = span > 600e3 ? hm : hms;
    zoomInfo.textContent = f(w0) + " – " + (w1 >= t1 ? "24:00" : f(w1));
  }

  // Pointer: a click plays from that moment; a drag picks a range.
  let down = null;
  const at = (ev) => {
    const b = tl.getBoundingClientRect();
    return w0 + Math.max(0, Math.min(1, (ev.clientX - b.left) / b.width)) * (w1 - w0);
  };
  tl.addEventListener("pointerdown", (ev) => { down = { x: ev.clientX, t: at(ev) }; tl.setPointerCapture(ev.pointerId); });
  tl.addEventListener("pointermove", (ev) => {
    if (down && Math.abs(ev.clientX - down.x) >= 5) setSel(Math.min(down.t, at(ev)), Math.max(down.t, at(ev)));
  });
  tl.addEventListener("pointerup", (ev) => {
    if (!down) return;
    const moved = Math.abs(ev.clientX - down.x) >= 5, t = down.t;
    down = null;
    if (!moved) playAt(t, 8 * (w1 - w0) / tl.clientWidth);
  });
  tl.addEventListener("pointercancel", () => (down = null));

  const zoomInfo = el("span", { class: "muted small" });
  const msg = el("p", { class: "muted", id: "rec-msg" });
  const clock = el("span", { class: "muted", id: "clock" });
  const video = el("video", { controls: true, ".muted": true, playsinline: true, preload: "auto", id: "player" });
  const player = el("div", { class: "player", hidden: true }, video, el("p", {}, clock));
  const from = el("input", { type: "time", step: "1", id: "from" });
  const to = el("input", { type: "time", step: "1", id: "to" });
  const mp4 = el("a", { class: "btn primary", id: "dl-mp4", text: "Download .mp4" });
  const ts = el("a", { class: "btn", id: "dl-ts", text: "Download .ts" });
  const selInfo = el("span", { class: "muted small", id: "sel-info" });

  const runsEl = el("div", {});
  main.append(
    el("div", { class: "row" },
      el("span", {}, el("button", { type: "button", onclick: () => zoomTo(zoom - 1, (w0 + w1) / 2), title: "Zoom out", text: "−" }), " ",
        el("button", { type: "button", onclick: () => zoomTo(zoom + 1, playing ? head : sel ? sel.s : (w0 + w1) / 2), title: "Zoom in", text: "+" }), " ",
        el("button", { type: "button", onclick: () => pan(-0.5), title: "Earlier", text: "◀" }), " ",
        el("button", { type: "button", onclick: () => pan(0.5), title: "Later", text: "▶" })),
      zoomInfo),
    tl,
    el("div", { class: "legend" },
      el("span", {}, el("i", { class: "run" }), "recorded"), el("span", {}, el("i", { class: "gap" }), "recorded, frames missing"),
      el("span", {}, "no colour: nothing recorded"), el("span", {}, "times in this browser's time zone")),
    msg, player,
    el("div", { class: "panel" },
      el("div", { class: "row" },
        el("label", {}, "From", from), el("label", {}, "To", to), mp4, ts, selInfo)), runsEl);

  // What the day holds: the summary line and the table of runs.
  function list() {
    const total = runs.reduce((a, r) => a + r.e - r.s, 0);
    const gapCount = rs.filter((r) => r.gaps).length;
    msg.textContent = runs.length
      ? fmtDur(total) + " recorded on " + dayStr + " in " + runs.length + " run" + (runs.length > 1 ? "s" : "") +
        (gapCount ? "; " + gapCount + " recording" + (gapCount > 1 ? "s" : "") + " with missing frames" : "") + ". Click the timeline to play."
      : "Nothing was recorded on " + dayStr + " (" + stream + " stream).";
    const rows = runs.map((r) => el("tr", { class: "click", onclick: () => { zoomTo(zoom, r.s); playAt(r.s, 0); }, title: "Play from " + hms(r.s) },
      td(hms(r.s)), td(hms(r.e)), td(fmtDur(r.e - r.s), "num"), td(fmtBytes(r.bytes), "num"),
      td(r.gaps ? r.gaps + " with missing frames" : ""), td(r.r.width ? r.r.width + "×" + r.r.height + " " + (r.r.codec || "") : "", "muted")));
    runsEl.replaceChildren(...(runs.length ? [el("h2", { text: "Runs of recordings" }), table("runs", ["From", "To", "#Length", "#Size", "Gaps", "Video"], rows)] : []));
  }

  function showSel() {
    selEl.hidden = !sel;
    if (sel) place(selEl, sel.s, sel.e);
  }
  function showHead() {
    headEl.hidden = head == null || head < w0 || head > w1;
    if (!headEl.hidden) headEl.style.left = x(head);
  }
  const timeOf = (v) => {
    const p = v.split(":").map(Number);
    return p.length >= 2 && !p.some(isNaN) ? new Date(y, m - 1, d, p[0], p[1], p[2] || 0).getTime() : null;
  };
  const stamp = (t) => { const x = new Date(t); return ymd(x).replace(/-/g, "") + "-" + pad(x.getHours()) + pad(x.getMinutes()) + pad(x.getSeconds()); };

  function setSel(a, b, typed) {
    sel = { s: Math.max(t0, a), e: Math.min(t1, b) };
    if (!typed) { from.value = hms(sel.s); to.value = hms(sel.e); }
    showSel();
    const ok = sel.e > sel.s;
    // What the range holds: recorded seconds and bytes, prorated.
    let secs = 0, bytes = 0;
    for (const r of rs) {
      const o = Math.min(r.e, sel.e) - Math.max(r.s, sel.s);
      if (o > 0) { secs += o; bytes += (r.bytes * o) / Math.max(1, r.e - r.s); }
    }
    const q = "?stream=" + stream + "&start=" + iso(sel.s) + "&end=" + iso(sel.e);
    const name0 = name + "-" + stream + "-" + stamp(sel.s);
    for (const [a, ext, path] of [[mp4, ".mp4", "view.mp4"], [ts, ".ts", "export.ts"]]) {
      if (ok && secs > 0) { a.href = base + path + q; a.download = name0 + ext; a.removeAttribute("aria-disabled"); }
      else { a.removeAttribute("href"); a.setAttribute("aria-disabled", "true"); }
    }
    selInfo.className = ok && secs ? "muted small" : "err small";
    selInfo.textContent = !ok ? "“To” must be after “From”."
      : !secs ? "Nothing was recorded in this range."
      : fmtDur(secs) + " of video, about " + fmtBytes(bytes) + (secs < sel.e - sel.s - 1500 ? " (the range has gaps: the file skips them)" : "") + ".";
  }
  const typed = () => {
    const a = timeOf(from.value), b = timeOf(to.value);
    if (a != null && b != null) setSel(a, b, true);
  };
  from.addEventListener("change", typed);
  to.addEventListener("change", typed);

  function playAt(t, slack) {
    // On a day-wide timeline a pixel is a minute: a click near a run counts.
    const r = runs.find((r) => t >= r.s && t < r.e) ||
      runs.filter((r) => r.s - t < slack && t - r.e < slack).sort((a, b) => Math.abs(a.s - t) - Math.abs(b.s - t))[0];
    if (!r) {
      msg.textContent = "Nothing was recorded at " + hms(t) + ". The coloured parts of the timeline have video.";
      return;
    }
    const start = Math.max(r.s, Math.min(t, r.e - 5000));
    // Up to an hour at a time: the .mp4's index grows with its length.
    const end = Math.min(r.e, start + 3600e3);
    playing = { start, end };
    head = start;
    player.hidden = false;
    video.src = base + "view.mp4?stream=" + stream + "&start=" + iso(start) + "&end=" + iso(end);
    video.play().catch(() => {});
    clock.textContent = "Loading " + hms(start) + "…";
    if (!sel || sel.e <= sel.s || start < sel.s || start > sel.e) setSel(start, Math.min(r.e, start + 60e3));
    showHead();
  }
  video.addEventListener("timeupdate", () => {
    if (!playing) return;
    head = playing.start + video.currentTime * 1000;
    clock.textContent = "Playing " + name + " (" + stream + ") at " + hms(head) + " on " + dayStr + ", up to " + hms(playing.end) + ".";
    if (head > w1 && zoom) zoomTo(zoom, head);
    showHead();
  });
  video.addEventListener("ended", () => (clock.textContent = "End of this run of recordings at " + hms(playing.end) + ". Click the timeline for more."));
  video.addEventListener("error", async () => {
    if (!video.getAttribute("src")) return;
    const why = await explain(video.src);
    clock.textContent = "";
    banner("Cannot play the recording: " + (why || (video.error && video.error.message) || "the browser could not decode it") +
      (why ? "" : ". Download it (.mp4 or .ts) and play it with VLC or mpv."));
  });
  leave.push(() => { video.removeAttribute("src"); video.load(); });

  list();
  if (runs.length) {
    // Start on the latest run's last minute (what one most often wants),
    // zoomed in enough to see what was recorded.
    const a = runs[0].s, b = runs[runs.length - 1].e;
    setSel(Math.max(runs[runs.length - 1].s, b - 60e3), b);
    let z = ZOOMS.length - 1;
    while (z > 0 && ZOOMS[z] < (b - a) * 1.2) z--;
    zoomTo(z, (a + b) / 2);
  } else { setSel(t0, t0); draw(); }
  // Today grows: new recordings show up as they are made.
  if (t0 <= Date.now() && Date.now() < t1) every(30000, async () => {
    try { await load(); if (my === gen) { list(); draw(); } } catch (e) { banner("Cannot read the recordings: " + e.message); }
  });
}

// ---- Cameras (admin)

const CAM_FIELDS = [
  ["name", "Name", "text", "a-z, 0-9, - and _; used in URLs"],
  ["url", "Main stream URL", "url", "rtsp://192.168.1.10:554/main"],
  ["sub_url", "Sub stream URL (optional)", "url", "rtsp://192.168.1.10:554/sub"],
  ["username", "User name (optional)", "text", ""],
  ["password", "Password", "password", ""],
  ["transport", "Transport", ["tcp", "udp"]],
  ["record", "Record", ["main", "sub", "both", "none"]],
  ["priority", "Priority", "number", "higher keeps recording when memory is short"],
  ["segment_seconds", "Seconds per recording", "number", ""],
];

async function camerasView() {
  const my = gen;
  main.append(el("div", { class: "row" }, el("h1", { class: "grow", text: "Cameras" }),
    el("button", { type: "button", class: "primary", id: "add-camera", onclick: () => edit(null), text: "Add camera" })));
  const box = el("div", {});
  const list = el("div", {});
  main.append(box, list);
  let cams;
  try {
    cams = await api("GET", "/api/cameras");
  } catch (e) {
    if (my !== gen) return;
    list.append(el("p", { class: "err", text: e.status === 404
      ? "This Vigil cannot change cameras from the page (no /api/cameras). Edit the config file and send it SIGHUP."
      : "Cannot read the cameras: " + e.message }));
    return;
  }
  if (my !== gen) return;
  const reload = () => { if (my === gen) route(); };

  function edit(c) {
    const err = el("p", { class: "err", role: "alert" });
    const inputs = {};
    const fields = CAM_FIELDS.map(([k, label, type, hint]) => {
      let i;
      if (Array.isArray(type)) i = el("select", { name: k }, type.map((v) => el("option", { value: v, text: v })));
      // The camera's credentials, not this browser's saved login.
      else i = el("input", { name: k, type, autocomplete: k === "password" ? "new-password" : "off", placeholder: k === "password" && c && c.password_set ? "(unchanged)" : hint || "" });
      if (k === "name" && c) i.readOnly = true;
      if (k === "priority" || k === "segment_seconds") { i.min = k === "priority" ? 0 : 1; i.step = 1; }
      const v = c ? c[k] : { transport: "tcp", record: "main", priority: 1, segment_seconds: 60 }[k];
      if (v != null && k !== "password") i.value = v;
      inputs[k] = i;
      return el("label", { class: k === "url" || k === "sub_url" ? "wide" : "" }, label, i);
    });
    const enabled = el("input", { type: "checkbox", name: "enabled", ".checked": c ? c.enabled !== false : true });
    const save = el("button", { class: "primary", type: "submit", text: c ? "Save" : "Add" });
    const form = el("form", { class: "grid", id: "camera-form" }, fields,
      el("label", { class: "check" }, enabled, "Enabled"),
      el("div", { class: "wide row" }, save, el("button", { type: "button", onclick: () => box.replaceChildren(), text: "Cancel" })), err);
    form.onsubmit = async (ev) => {
      ev.preventDefault();
      const body = {};
      for (const [k, , type] of CAM_FIELDS) {
        let v = inputs[k].value.trim();
        if (type === "number") v = v === "" ? null : Number(v);
        else if (v === "") v = null;
        if (c) {
          // A change sends only what changed; an emptied optional field is null.
          if (k === "name" || (k === "password" && v == null) || (c[k] ?? null) === v) continue;
        } else if (v == null) continue;
        body[k] = v;
      }
      if (!c || enabled.checked !== (c.enabled !== false)) body.enabled = enabled.checked;
      save.disabled = true;
      err.textContent = "";
      try {
        if (c) await api("PUT", "/api/cameras/" + enc(c.name), body);
        else await api("POST", "/api/cameras", body);
        banner(c ? "Camera “" + c.name + "” saved; it restarts with the new settings." : "Camera “" + body.name + "” added; it starts recording now.", true);
        reload();
      } catch (e) {
        err.textContent = e.message;
        save.disabled = false;
        // The server names the field at fault: go there.
        if (inputs[e.field]) inputs[e.field].focus();
      }
    };
    box.replaceChildren(el("div", { class: "panel" }, el("h2", { text: c ? "Edit " + c.name : "Add a camera" }), form));
    (c ? inputs.url : inputs.name).focus();
  }

  async function act(c, method, body, done) {
    try {
      await api(method, "/api/cameras/" + enc(c.name), body);
      banner(done, true);
      reload();
    } catch (e) { banner(e.message); }
  }

  if (!cams.length) { list.append(el("p", { class: "muted", text: "No cameras configured yet." })); return; }
  const hide = (u) => (u || "").replace(/\/\/[^/@]*@/, "//***@");
  list.append(table("cameras", ["Name", "Main stream", "Sub stream", "Record", "Transport", "#Priority", "", ""],
    cams.map((c) => el("tr", { class: c.enabled === false ? "muted" : "", "data-camera": c.name },
      td([el("a", { href: "#/camera/" + enc(c.name), text: c.name }), c.enabled === false ? " (disabled)" : ""]),
      td(hide(c.url), "wrap"), td(hide(c.sub_url) || "–", "wrap"), td(c.record), td(c.transport), td(c.priority, "num"),
      td([el("button", { type: "button", class: "edit", onclick: () => edit(c), text: "Edit" }), " ",
        el("button", { type: "button", class: "toggle", onclick: () => act(c, "PUT", { enabled: c.enabled === false }, "Camera “" + c.name + "” " + (c.enabled === false ? "enabled." : "disabled.")), text: c.enabled === false ? "Enable" : "Disable" })]),
      td(delButton(() => act(c, "DELETE", null, "Camera “" + c.name + "” deleted; its recordings stay until the ring overwrites them.")))))));
}

// ---- Status

async function statusView() {
  const my = gen;
  main.append(el("div", { class: "row" }, el("h1", { class: "grow", text: "Status" }), el("span", { class: "muted small", id: "updated" })));
  const body = el("div", {});
  main.append(body);
  const show = async () => {
    let s;
    try { s = await getStatus(); } catch (e) { if (my === gen) banner("Cannot read the status: " + e.message); return; }
    if (my !== gen) return;
    const st = s.storage || {}, mem = s.memory || {};
    const used = st.bytes_used, tot = st.bytes_total;
    const meter = el("div", { class: "meter" }, el("i", {}));
    meter.firstChild.style.width = (tot ? Math.min(100, (100 * (used || 0)) / tot) : 0) + "%";
    const span = st.oldest && st.newest ? Date.parse(st.newest) - Date.parse(st.oldest) : null;
    const card = (title, big, ...rest) => el("div", { class: "panel" }, el("div", { class: "muted small", text: title }), el("div", { class: "big", text: big }), ...rest);
    const streams = [];
    for (const c of s.cameras || []) for (const x of c.streams || []) streams.push([c.name, x]);
    body.replaceChildren(
      el("div", { class: "cards" },
        card("Storage", fmtBytes(used) + " of " + fmtBytes(tot), meter, el("div", { class: "muted small", text: (st.recordings ?? 0) + " recordings in " + (st.path || "?") }),
          st.error && el("div", { class: "err small", text: st.error })),
        card("Retention", span != null ? fmtDur(span) : "–", el("div", { class: "muted small", text: st.oldest ? "from " + when(st.oldest) + " to " + when(st.newest) : "nothing recorded yet" })),
        card("Memory", fmtBytes(mem.rss_bytes), el("div", { class: "muted small", text: "resident; recording arena " + fmtBytes(mem.arena_bytes) })),
        card("Vigil " + (s.version || ""), "up " + fmtDur((s.uptime_s || 0) * 1000), el("div", { class: "muted small", text: streams.length + " streams" }))),
      el("h2", { text: "Streams" }),
      table("streams", ["Camera", "Stream", "State", "Codec", "Size", "#fps", "#Bitrate", "#Frames", "#Dropped", "#Lost packets", "#Reconnects", "Last error"],
        streams.map(([n, x]) => el("tr", {},
          td(el("a", { href: "#/camera/" + enc(n), text: n })), td(x.stream), td(el("span", { class: "badge " + x.state, text: x.state })),
          td(x.codec || "–"), td(x.width ? x.width + "×" + x.height : "–"), td(x.fps != null ? x.fps.toFixed(1) : "–", "num"),
          td(x.bitrate_bps != null ? (x.bitrate_bps / 1000).toFixed(0) + " kbit/s" : "–", "num"), td(x.frames ?? "–", "num"),
          td(x.frames_dropped ?? "–", "num" + (x.frames_dropped ? " err" : "")), td(x.packets_lost ?? "–", "num"),
          td(x.reconnects ?? "–", "num"), td([x.last_error, x.storage_error].filter(Boolean).join("; "), "wrap err")))));
    document.getElementById("updated").textContent = "updated " + hms(Date.now()) + ", every 5 s";
  };
  await show();
  every(5000, show);
}

// ---- Users (admin)

async function usersView() {
  const my = gen;
  main.append(el("h1", { text: "Users" }));
  if (!authOn) main.append(el("p", { class: "muted", text: "Logins are off on this Vigil (http.auth = false): users matter once they are turned on." }));
  let users;
  try {
    users = await api("GET", "/api/users");
  } catch (e) {
    if (my === gen) main.append(el("p", { class: "err", text: e.status === 404 ? "This Vigil cannot manage users from the page (no /api/users); use `vigil user`." : "Cannot read the users: " + e.message }));
    return;
  }
  if (my !== gen) return;
  const act = async (method, path, body, done) => {
    try { await api(method, path, body); banner(done, true); route(); } catch (e) { banner(e.message); }
  };
  const roles = (v, onchange) => el("select", { name: "role", onchange }, ["viewer", "admin"].map((r) => el("option", { value: r, selected: r === v, text: r })));
  const rows = users.map((u) => {
    const path = "/api/users/" + enc(u.name);
    const pw = el("input", { type: "password", placeholder: "new password", autocomplete: "new-password" });
    return el("tr", {},
      td(u.name + (me && me.name === u.name ? " (you)" : "")),
      td(roles(u.role, (e) => act("PUT", path, { role: e.target.value }, "“" + u.name + "” is now " + e.target.value + "."))),
      td(el("form", { class: "row", onsubmit: (e) => { e.preventDefault(); if (pw.value) act("PUT", path, { password: pw.value }, "Password of “" + u.name + "” changed."); } },
        pw, el("button", { type: "submit", text: "Set password" }))),
      td(delButton(() => act("DELETE", path, null, "User “" + u.name + "” deleted."))));
  });
  main.append(users.length
    ? table("users", ["Name", "Role", "Password", ""], rows)
    : el("p", { class: "muted", text: "No users yet." }));
  const name = el("input", { name: "name", required: true, autocomplete: "off" });
  const pass = el("input", { name: "password", type: "password", required: true, autocomplete: "new-password" });
  const role = roles("viewer");
  main.append(el("div", { class: "panel" }, el("h2", { text: "Add a user" }),
    el("form", { class: "row", onsubmit: (e) => { e.preventDefault(); act("POST", "/api/users", { name: name.value.trim(), password: pass.value, role: role.value }, "User “" + name.value.trim() + "” added."); } },
      el("label", {}, "Name", name), el("label", {}, "Password", pass), el("label", {}, "Role", role), el("button", { class: "primary", type: "submit", text: "Add" }))));
}

// ---- Navigation

const VIEWS = { live: liveView, camera: cameraView, recordings: recordingsView, cameras: camerasView, status: statusView, users: usersView, login: loginView };

function route() {
  for (const f of leave.splice(0)) { try { f(); } catch { /* leaving must not fail */ } }
  gen++;
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?");
  const [view, ...rest] = path.split("/");
  let arg = "";
  try { arg = decodeURIComponent(rest.join("/")); } catch { /* a mangled link: no argument */ }
  const name = VIEWS[view] ? view : "live";
  if (authOn && !me && name !== "login") { loggedOut(); return; }
  if (bannerEl.dataset.keep) bannerEl.dataset.keep = "";
  else banner("");
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("on", a.dataset.view === (name === "camera" ? "live" : name));
  document.title = "Vigil · " + name[0].toUpperCase() + name.slice(1) + (arg ? " · " + arg : "");
  main.replaceChildren();
  if ((name === "cameras" || name === "users") && !isAdmin()) {
    main.append(el("p", { class: "err", text: "Only admins may manage " + name + "; you are logged in as a viewer." }));
    return;
  }
  const my = gen;
  VIEWS[name](arg, new URLSearchParams(query || "")).catch((e) => {
    if (my !== gen || e.status === 401) return;
    main.append(el("p", { class: "err", text: e.message }));
  });
}

window.addEventListener("error", (e) => banner("Something went wrong on this page: " + e.message));
window.addEventListener("unhandledrejection", (e) => banner("Something went wrong on this page: " + ((e.reason && e.reason.message) || e.reason)));

(async () => {
  try {
    const s = await getStatus();
    // `auth`: whether logins are on; `user`: who is logged in.
    authOn = s.auth === true || !!s.user;
    setUser(s.user || null);
  } catch (e) {
    if (e.status !== 401) banner(e.message);
  }
  window.addEventListener("hashchange", route);
  route();
})();
