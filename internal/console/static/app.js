// app.js: login, the page frame, the hash router and the polling timers.
"use strict";

// Each view gets a fresh generation; its timers stop when the route changes.
T.gen = 0;
T.timers = [];

T.interval = function () {
  const v = Number(sessionStorage.getItem("tern.interval"));
  return v >= 1000 && v <= 60000 ? v : 3000;
};

// T.every runs fn now and then every refresh interval while the view is
// shown and the tab visible, never two runs at once.
T.every = function (fn) {
  const gen = T.gen;
  let busy = false;
  const tick = async () => {
    if (gen !== T.gen || busy || document.hidden) return;
    busy = true;
    try { await fn(); } catch (e) { T.showError(e); } finally { busy = false; }
  };
  tick();
  T.timers.push(setInterval(tick, T.interval()));
};

T.showError = function (e) {
  if (e && e.status === 401) return;
  const box = document.getElementById("error");
  if (!box) return;
  box.textContent = e ? (e.status ? "HTTP " + e.status + ": " : "") + e.message : "";
  box.hidden = !e;
};

T.onUnauthorized = function () {
  T.session.clear();
  showLogin("Your session ended: log in again.");
};

function showLogin(msg) {
  T.gen++;
  T.timers.forEach(clearInterval);
  T.timers = [];
  document.getElementById("app").hidden = true;
  const login = document.getElementById("login");
  login.hidden = false;
  document.getElementById("login-error").textContent = msg || "";
  document.getElementById("login-user").focus();
}

async function login(ev) {
  ev.preventDefault();
  const user = document.getElementById("login-user").value;
  const pass = document.getElementById("login-password").value;
  const err = document.getElementById("login-error");
  err.textContent = "";
  T.session.set(user, pass);
  try {
    const me = await T.get("/api/whoami");
    const s = T.session.get();
    s.tags = me.tags || "";
    sessionStorage.setItem(T.session.key, JSON.stringify(s));
    document.getElementById("login-password").value = "";
    startApp();
  } catch (e) {
    T.session.clear();
    err.textContent = e.status === 401 ? "Login refused: check the user name and password." : e.message;
  }
}

function startApp() {
  const s = T.session.get();
  document.getElementById("login").hidden = true;
  document.getElementById("app").hidden = false;
  document.getElementById("whoami").textContent = s.user;
  // The admin pages change things only an administrator (or, for
  // policies, a policymaker) may: other users do not see the link (the
  // API refuses them anyway).
  const tags = Array.isArray(s.tags) ? s.tags : String(s.tags || "").split(",");
  document.querySelector('nav a[data-nav="/admin"]').hidden = !tags.some((t) => t === "administrator" || t === "policymaker");
  const sel = document.getElementById("interval");
  sel.value = String(T.interval());
  render();
}

function render() {
  T.gen++;
  T.timers.forEach(clearInterval);
  T.timers = [];
  T.showError(null);
  const hash = location.hash.replace(/^#/, "") || "/";
  const main = document.getElementById("main");
  for (const a of document.querySelectorAll("nav a[data-nav]")) {
    const p = a.dataset.nav;
    a.classList.toggle("active", p === "/" ? hash === "/" : hash.startsWith(p));
  }
  for (const r of T.routes) {
    const m = hash.match(r.re);
    if (m) {
      main.replaceChildren();
      r.view(main, ...m.slice(1).map(decodeURIComponent));
      return;
    }
  }
  main.replaceChildren(T.h("h1", {}, "Not found"), T.h("p", {}, "No page " + hash + "."));
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login-form").addEventListener("submit", login);
  document.getElementById("logout").addEventListener("click", () => {
    T.session.clear();
    showLogin("Logged out.");
  });
  document.getElementById("interval").addEventListener("change", (e) => {
    sessionStorage.setItem("tern.interval", e.target.value);
    render();
  });
  window.addEventListener("hashchange", () => { if (T.session.get()) render(); });
  if (T.session.get()) startApp(); else showLogin();
});
