// admin.js: users, permissions, topic permissions, policies and limits —
// forms over the API's PUT and DELETE endpoints. The API decides who may
// change what (an administrator); the console shows its refusal.
"use strict";

T.adminNav = function (active) {
  const items = [["users", "Users"], ["permissions", "Permissions"], ["policies", "Policies"], ["limits", "Limits"], ["definitions", "Definitions"]];
  return T.h("div", { class: "subnav" }, items.map(([p, l]) => T.h("a", { href: "#/admin/" + p, class: p === active ? "active" : "" }, l)));
};

// T.simpleTable fills a tbody from rows of cells.
T.fill = function (tbody, rows, cols) {
  tbody.replaceChildren(...rows.map((cells) => T.h("tr", {}, cells.map((c) => T.h("td", {}, c)))));
  if (!rows.length) tbody.append(T.h("tr", {}, T.h("td", { colspan: String(cols), class: "empty" }, "None.")));
};
T.table = (id, heads, tbody) => T.h("div", { class: "table-wrap" }, T.h("table", { class: "list", id: id },
  T.h("thead", {}, T.h("tr", {}, heads.map((l) => T.h("th", {}, l)))), tbody));

// T.act runs a change, reports it and reloads the view's data.
T.act = async function (fn, msg, reload) {
  try { await fn(); T.flash(msg); if (reload) await reload(); } catch (e) { T.flash(e.message, "error"); }
};
T.del = (label, path, reload) => T.h("button", {
  type: "button", class: "danger small", onclick: () => {
    if (T.confirmed("Delete " + label + "?")) T.act(() => T.api("DELETE", path), label + " deleted.", reload);
  },
}, "Delete");
T.field = (label, input) => [T.h("label", { for: input.id }, label), input];

T.route(/^\/admin\/users$/, (main) => {
  const tbody = T.h("tbody");
  const name = T.h("input", { id: "user-name", required: true, autocomplete: "off" });
  const pass = T.h("input", { id: "user-password", type: "password", autocomplete: "new-password", placeholder: "unchanged if empty when editing" });
  const tags = T.h("input", { id: "user-tags", placeholder: "administrator, monitoring, management, policymaker" });
  async function load() {
    const us = await T.get("/api/users");
    T.fill(tbody, us.map((u) => [
      u.name, (u.tags || []).join(", "), u.loopback_only ? "loopback only" : "",
      Object.entries(u.limits || {}).map(([k, v]) => k + "=" + v).join(", "),
      T.h("span", {}, T.h("button", { type: "button", class: "small", onclick: () => { name.value = u.name; tags.value = (u.tags || []).join(", "); pass.value = ""; pass.focus(); } }, "Edit"), " ",
        T.del("user " + u.name, "/api/users/" + T.enc(u.name), load)),
    ]), 5);
  }
  main.append(T.adminNav("users"), T.h("h1", {}, "Users"), T.table("users", ["Name", "Tags", "Login", "Limits", ""], tbody),
    T.h("h2", {}, "Add or change a user"),
    T.h("form", {
      class: "grid", onsubmit: (ev) => {
        ev.preventDefault();
        const body = { tags: tags.value };
        if (pass.value) body.password = pass.value;
        T.act(() => T.api("PUT", "/api/users/" + T.enc(name.value), body), "User " + name.value + " saved.", load).then(() => { pass.value = ""; });
      },
    }, T.field("Name", name), T.field("Password", pass), T.field("Tags", tags), T.h("span"), T.h("button", { type: "submit", id: "user-save" }, "Save user")));
  load().catch(T.showError);
});

T.route(/^\/admin\/permissions$/, (main) => {
  const perms = T.h("tbody"), topics = T.h("tbody");
  const user = T.h("input", { id: "perm-user", required: true, autocomplete: "off" });
  const vh = T.vhostSelect("perm-vhost");
  const conf = T.h("input", { id: "perm-configure", value: ".*" });
  const write = T.h("input", { id: "perm-write", value: ".*" });
  const read = T.h("input", { id: "perm-read", value: ".*" });
  const tuser = T.h("input", { id: "tperm-user", required: true, autocomplete: "off" });
  const tvh = T.vhostSelect("tperm-vhost");
  const texch = T.h("input", { id: "tperm-exchange", value: "amq.topic" });
  const twrite = T.h("input", { id: "tperm-write", value: ".*" });
  const tread = T.h("input", { id: "tperm-read", value: ".*" });
  const path = (v, u) => T.enc(v) + "/" + T.enc(u);
  async function load() {
    const ps = await T.get("/api/permissions");
    T.fill(perms, ps.map((p) => [p.user, p.vhost, p.configure, p.write, p.read,
      T.del("permission of " + p.user + " in " + p.vhost, "/api/permissions/" + path(p.vhost, p.user), load)]), 6);
    const ts = await T.get("/api/topic-permissions");
    T.fill(topics, ts.map((p) => [p.user, p.vhost, p.exchange, p.write, p.read,
      T.del("topic permissions of " + p.user + " in " + p.vhost, "/api/topic-permissions/" + path(p.vhost, p.user), load)]), 6);
  }
  main.append(T.adminNav("permissions"), T.h("h1", {}, "Permissions"),
    T.table("permissions", ["User", "Virtual host", "Configure", "Write", "Read", ""], perms),
    T.h("h2", {}, "Set a permission"),
    T.h("form", {
      class: "grid", onsubmit: (ev) => {
        ev.preventDefault();
        T.act(() => T.api("PUT", "/api/permissions/" + path(vh.value, user.value), { configure: conf.value, write: write.value, read: read.value }),
          "Permission of " + user.value + " in " + vh.value + " set.", load);
      },
    }, T.field("User", user), T.field("Virtual host", vh), T.field("Configure", conf), T.field("Write", write), T.field("Read", read), T.h("span"), T.h("button", { type: "submit", id: "perm-save" }, "Set permission")),
    T.h("h2", {}, "Topic permissions"),
    T.table("topic-permissions", ["User", "Virtual host", "Exchange", "Write", "Read", ""], topics),
    T.h("h2", {}, "Set a topic permission"),
    T.h("form", {
      class: "grid", onsubmit: (ev) => {
        ev.preventDefault();
        T.act(() => T.api("PUT", "/api/topic-permissions/" + path(tvh.value, tuser.value), { exchange: texch.value, write: twrite.value, read: tread.value }),
          "Topic permission of " + tuser.value + " set.", load);
      },
    }, T.field("User", tuser), T.field("Virtual host", tvh), T.field("Exchange", texch), T.field("Write", twrite), T.field("Read", tread), T.h("span"), T.h("button", { type: "submit", id: "tperm-save" }, "Set topic permission")));
  load().catch(T.showError);
});

T.route(/^\/admin\/policies$/, (main) => {
  const policies = T.h("tbody"), ops = T.h("tbody");
  const kind = T.h("select", { id: "policy-kind", "aria-label": "kind" }, T.h("option", { value: "policies" }, "policy"), T.h("option", { value: "operator-policies" }, "operator policy (caps)"));
  const vh = T.vhostSelect("policy-vhost");
  const name = T.h("input", { id: "policy-name", required: true });
  const pattern = T.h("input", { id: "policy-pattern", value: ".*" });
  const applyTo = T.h("select", { id: "policy-apply-to" }, ["queues", "classic_queues", "quorum_queues", "streams", "exchanges", "all"].map((a) => T.h("option", { value: a }, a)));
  const prio = T.h("input", { id: "policy-priority", type: "number", value: "0" });
  const def = T.h("textarea", { id: "policy-definition", rows: "4", placeholder: '{"max-length": 10000, "overflow": "reject-publish"}' });
  const rows = (list, base) => list.map((p) => [p.vhost, p.name, p.pattern, p["apply-to"], String(p.priority), JSON.stringify(p.definition),
    T.h("span", {}, T.h("button", {
      type: "button", class: "small", onclick: () => {
        kind.value = base; vh.value = p.vhost; name.value = p.name; pattern.value = p.pattern; applyTo.value = p["apply-to"];
        prio.value = String(p.priority); def.value = JSON.stringify(p.definition, null, 1);
      },
    }, "Edit"), " ", T.del(base.replace(/ies$/, "y").replace("-", " ") + " " + p.name, "/api/" + base + "/" + T.enc(p.vhost) + "/" + T.enc(p.name), load))]);
  async function load() {
    T.fill(policies, rows(await T.get("/api/policies"), "policies"), 7);
    T.fill(ops, rows(await T.get("/api/operator-policies"), "operator-policies"), 7);
  }
  const heads = ["Virtual host", "Name", "Pattern", "Apply to", "Priority", "Definition", ""];
  main.append(T.adminNav("policies"), T.h("h1", {}, "Policies"), T.table("policies", heads, policies),
    T.h("h2", {}, "Operator policies"), T.table("operator-policies", heads, ops),
    T.h("h2", {}, "Add or change a policy"),
    T.h("form", {
      class: "grid", onsubmit: (ev) => {
        ev.preventDefault();
        let d;
        try { d = JSON.parse(def.value || "{}"); } catch (e) { T.flash("The definition is not JSON: " + e.message, "error"); return; }
        T.act(() => T.api("PUT", "/api/" + kind.value + "/" + T.enc(vh.value) + "/" + T.enc(name.value),
          { pattern: pattern.value, "apply-to": applyTo.value, priority: Number(prio.value) || 0, definition: d }), "Policy " + name.value + " saved.", load);
      },
    }, T.field("Kind", kind), T.field("Virtual host", vh), T.field("Name", name), T.field("Pattern", pattern), T.field("Apply to", applyTo),
    T.field("Priority", prio), T.field("Definition (JSON)", def), T.h("span"), T.h("button", { type: "submit", id: "policy-save" }, "Save policy")));
  load().catch(T.showError);
});

T.route(/^\/admin\/limits$/, (main) => {
  const vl = T.h("tbody"), ul = T.h("tbody");
  const vh = T.vhostSelect("vlimit-vhost");
  const vname = T.h("select", { id: "vlimit-name" }, ["max-connections", "max-queues"].map((n) => T.h("option", { value: n }, n)));
  const vval = T.h("input", { id: "vlimit-value", type: "number", min: "0", required: true });
  const user = T.h("input", { id: "ulimit-user", required: true, autocomplete: "off" });
  const uname = T.h("select", { id: "ulimit-name" }, ["max-connections", "max-channels"].map((n) => T.h("option", { value: n }, n)));
  const uval = T.h("input", { id: "ulimit-value", type: "number", min: "0", required: true });
  const rate = T.h("textarea", { id: "rate-limits", rows: "6" });
  const entries = (list, who, base) => list.flatMap((l) => Object.entries(l.value || {}).map(([k, v]) =>
    [l[who], k, T.fmtNum(v), T.del(k + " of " + l[who], base + T.enc(l[who]) + "/" + T.enc(k), load)]));
  async function load() {
    T.fill(vl, entries(await T.get("/api/vhost-limits"), "vhost", "/api/vhost-limits/"), 4);
    T.fill(ul, entries(await T.get("/api/user-limits"), "user", "/api/user-limits/"), 4);
    try { rate.value = JSON.stringify(await T.get("/api/limits"), null, 1); } catch (e) { rate.value = ""; rate.placeholder = e.message; }
  }
  main.append(T.adminNav("limits"), T.h("h1", {}, "Limits"),
    T.h("h2", {}, "Virtual host limits"), T.table("vhost-limits", ["Virtual host", "Limit", "Value", ""], vl),
    T.h("form", {
      class: "inline-form", onsubmit: (ev) => {
        ev.preventDefault();
        T.act(() => T.api("PUT", "/api/vhost-limits/" + T.enc(vh.value) + "/" + T.enc(vname.value), { value: Number(vval.value) }), "Limit set.", load);
      },
    }, "Set ", vname, " of ", vh, " to ", vval, T.h("button", { type: "submit", id: "vlimit-save" }, "Set")),
    T.h("h2", {}, "User limits"), T.table("user-limits", ["User", "Limit", "Value", ""], ul),
    T.h("form", {
      class: "inline-form", onsubmit: (ev) => {
        ev.preventDefault();
        T.act(() => T.api("PUT", "/api/user-limits/" + T.enc(user.value) + "/" + T.enc(uname.value), { value: Number(uval.value) }), "Limit set.", load);
      },
    }, "Set ", uname, " of user ", user, " to ", uval, T.h("button", { type: "submit", id: "ulimit-save" }, "Set")),
    T.h("h2", {}, "Publish rate limits"),
    T.h("p", { class: "hint" }, "Tern's publish rate limits (/api/limits): a JSON array of {vhost, user, per_connection, publish_rate, publish_burst, publish_bytes_rate, publish_bytes_burst}."),
    T.h("form", {
      class: "action", onsubmit: (ev) => {
        ev.preventDefault();
        let v;
        try { v = JSON.parse(rate.value || "[]"); } catch (e) { T.flash("Not JSON: " + e.message, "error"); return; }
        T.act(() => T.api("PUT", "/api/limits", v), "Publish rate limits saved.", load);
      },
    }, rate, T.h("button", { type: "submit", id: "rate-save" }, "Save rate limits")));
  load().catch(T.showError);
});

// Definitions: RabbitMQ's JSON export of users, vhosts, permissions,
// policies, queues, exchanges and bindings, and its import (all or
// nothing, as the API applies it).
T.route(/^\/admin\/definitions$/, (main) => {
  const text = T.h("textarea", { id: "definitions-text", rows: "18", spellcheck: "false", placeholder: "Export, or paste or load a definitions file (RabbitMQ's format) to import" });
  const file = T.h("input", { type: "file", id: "definitions-file", accept: ".json,application/json" });
  const download = T.h("a", { id: "definitions-download", hidden: true, download: "tern-definitions.json" }, "Download");
  let url = null;
  file.addEventListener("change", async () => {
    if (file.files.length) text.value = await file.files[0].text();
  });
  main.append(T.adminNav("definitions"), T.h("h1", {}, "Definitions"),
    T.h("p", { class: "hint" }, "Export and import go through /api/definitions: an import is applied whole or not at all."),
    T.h("div", { class: "action" },
      T.h("button", {
        type: "button", id: "definitions-export", onclick: async () => {
          try {
            const d = await T.get("/api/definitions");
            text.value = JSON.stringify(d, null, 2);
            if (url) URL.revokeObjectURL(url);
            url = URL.createObjectURL(new Blob([text.value], { type: "application/json" }));
            download.href = url;
            download.hidden = false;
          } catch (e) { T.flash(e.message, "error"); }
        },
      }, "Export"), download, T.h("span", { class: "muted" }, " · load a file: "), file,
      text,
      T.h("button", {
        type: "button", id: "definitions-import", onclick: () => {
          let d;
          try { d = JSON.parse(text.value); } catch (e) { T.flash("Not JSON: " + e.message, "error"); return; }
          if (!T.confirmed("Import these definitions into the broker?")) return;
          T.act(() => T.api("POST", "/api/definitions", d), "Definitions imported.");
        },
      }, "Import")));
});
