// api.js: the session (credentials in sessionStorage, never in a URL), the
// API client and small DOM helpers shared by the other scripts.
"use strict";

const T = {};

// The views register their routes as their scripts load (app.js routes).
T.routes = []; // [{re, view}]
T.route = function (re, view) { T.routes.push({ re: re, view: view }); };

T.session = {
  key: "tern.session",
  get() {
    try { return JSON.parse(sessionStorage.getItem(this.key) || "null"); } catch (e) { return null; }
  },
  set(user, password) {
    // btoa needs Latin-1: encode UTF-8 first so any password works.
    const auth = btoa(String.fromCharCode(...new TextEncoder().encode(user + ":" + password)));
    sessionStorage.setItem(this.key, JSON.stringify({ user: user, auth: auth }));
  },
  clear() { sessionStorage.removeItem(this.key); },
};

// APIError carries the HTTP status and the API's reason.
class APIError extends Error {
  constructor(status, reason) { super(reason); this.status = status; }
}

// T.api calls the HTTP API with the session's credentials. The console's
// header makes the broker leave out the Basic challenge on a 401, so the
// browser never pops up its own login dialog. A 401 ends the session.
T.api = async function (method, path, body, extraHeaders) {
  const s = T.session.get();
  const headers = { "X-Tern-Console": "1", "Accept": "application/json" };
  if (s) headers["Authorization"] = "Basic " + s.auth;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  Object.assign(headers, extraHeaders || {});
  let res;
  try {
    res = await fetch(path, {
      method: method, headers: headers, credentials: "omit", cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new APIError(0, "the broker did not answer (" + e.message + ")");
  }
  const text = await res.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch (e) { data = text; } }
  if (!res.ok) {
    let reason = res.status + " " + res.statusText;
    if (data && typeof data === "object") reason = data.reason || data.error || reason;
    else if (typeof data === "string" && data) reason = data;
    if (res.status === 401 && path !== "/api/whoami") T.onUnauthorized();
    throw new APIError(res.status, reason);
  }
  return data;
};
T.get = (path) => T.api("GET", path);

// T.q builds a query string from an object, leaving out empty values.
T.q = function (params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") u.set(k, String(v));
  }
  const s = u.toString();
  return s ? "?" + s : "";
};
T.enc = encodeURIComponent;

// h builds an element: h("a", {href: "#/"}, "text", child…). Text is always
// set as text, never parsed as HTML: queue names and payloads come from
// clients.
T.h = function (tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k === "value") e.value = v;
    else if (v === true) e.setAttribute(k, "");
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
};

T.fmtNum = function (n) {
  if (n === undefined || n === null || n === "") return "";
  if (typeof n !== "number") return String(n);
  if (!Number.isInteger(n)) return n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString("en-US");
  return n.toLocaleString("en-US");
};
T.fmtRate = (r) => (r === undefined || r === null ? "" : (r < 10 ? r.toFixed(1) : Math.round(r).toLocaleString("en-US")) + "/s");
T.fmtBytes = function (b) {
  if (b === undefined || b === null) return "";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
  return (i ? b.toFixed(1) : b) + " " + u[i];
};
T.fmtTime = (ms) => (ms ? new Date(ms).toLocaleString() : "");
T.vhostLabel = (v) => (v === "/" ? "/" : v);

// dig reads a dotted path ("message_stats.publish_details.rate").
T.dig = function (o, path) {
  for (const p of path.split(".")) { if (o === undefined || o === null) return undefined; o = o[p]; }
  return o;
};

// flash shows a message at the top of the page for a few seconds.
T.flash = function (msg, kind) {
  const box = document.getElementById("flash");
  const m = T.h("div", { class: "flash " + (kind || "ok"), role: "status" }, msg);
  box.append(m);
  setTimeout(() => m.remove(), kind === "error" ? 8000 : 4000);
};

// confirmed asks before a destructive action.
T.confirmed = (what) => window.confirm(what);
