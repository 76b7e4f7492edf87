// lists.js: the paged, searchable, sortable lists (queues, exchanges,
// connections, channels, consumers). Searching, sorting and paging are the
// API's (page, page_size=100, name, sort, sort_reverse, columns), so a
// broker with 10,000 queues sends 100 rows at a time.
"use strict";

T.pageSize = 100;

// T.listView renders spec into main and refreshes it every interval.
T.listView = function (main, spec) {
  const stateKey = "tern.list." + spec.path;
  let st = { page: 1, name: "", sort: spec.sort || "", reverse: !!spec.reverse, vhost: "" };
  try { Object.assign(st, JSON.parse(sessionStorage.getItem(stateKey) || "{}")); } catch (e) { /* keep defaults */ }
  const save = () => sessionStorage.setItem(stateKey, JSON.stringify(st));

  const search = T.h("input", { type: "search", class: "search", placeholder: spec.search === "page" ? "Filter this page" : "Search names (regex with /…/)", value: st.name, "aria-label": "search", id: "search" });
  // One vhost or all: the API's per-vhost path (spec.vhostPath).
  const vhostSel = T.h("select", { id: "list-vhost", "aria-label": "virtual host" }, T.h("option", { value: "" }, "All virtual hosts"));
  T.vhosts().then((vs) => {
    vhostSel.append(...(vs || []).map((v) => T.h("option", { value: v.name }, v.name)));
    vhostSel.value = st.vhost;
  }).catch(() => { /* the list still works for all vhosts */ });
  vhostSel.addEventListener("change", () => { st.vhost = vhostSel.value; st.page = 1; save(); refresh(); });
  const count = T.h("span", { class: "count" });
  const pager = T.h("span", { class: "pager" });
  const thead = T.h("thead");
  const tbody = T.h("tbody");
  const table = T.h("table", { class: "list", id: "list-" + spec.id }, thead, tbody);
  main.append(
    T.h("div", { class: "page-head" }, T.h("h1", {}, spec.title), spec.toolbar ? spec.toolbar() : null),
    T.h("div", { class: "list-tools" }, vhostSel, search, count, pager),
    T.h("div", { class: "table-wrap" }, table));

  function drawHead() {
    thead.replaceChildren(T.h("tr", {}, spec.columns.map((c) => {
      const key = c.sort === undefined ? c.key : c.sort;
      const mark = key && st.sort === key ? (st.reverse ? " ▼" : " ▲") : "";
      const sortBy = () => {
        if (st.sort === key) st.reverse = !st.reverse; else { st.sort = key; st.reverse = !!c.num; }
        st.page = 1; save(); drawHead(); refresh();
      };
      return T.h("th", {
        class: (c.num ? "num " : "") + (key ? "sortable" : ""),
        title: key ? "sort by " + c.label : undefined,
        tabindex: key ? "0" : undefined,
        "aria-sort": key && st.sort === key ? (st.reverse ? "descending" : "ascending") : undefined,
        onclick: key ? sortBy : undefined,
        onkeydown: key ? (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortBy(); } } : undefined,
      }, c.label + mark);
    })));
  }

  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { st.name = search.value; st.page = 1; save(); refresh(); }, 250);
  });

  const gen = T.gen;
  let busy = false, again = false;
  async function refresh() {
    if (gen !== T.gen) return;
    if (busy) { again = true; return; }
    busy = true;
    try {
      await load();
      T.showError(null);
    } catch (e) { T.showError(e); } finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }

  async function load() {
    const params = { page: st.page, page_size: T.pageSize, sort: st.sort, sort_reverse: st.reverse ? "true" : "", columns: spec.apiColumns };
    if (spec.search !== "page" && st.name) {
      const m = st.name.match(/^\/(.+)\/$/);
      if (m) { params.name = m[1]; params.use_regex = "true"; } else params.name = st.name;
    }
    let data;
    try {
      data = await T.get((st.vhost ? spec.vhostPath(T.enc(st.vhost)) : spec.path) + T.q(params));
    } catch (e) {
      if (e.status === 400 && st.page > 1) { st.page = 1; save(); return load(); }
      if (e.status === 404 && st.vhost) { st.vhost = ""; vhostSel.value = ""; save(); return load(); }
      throw e;
    }
    if (gen !== T.gen) return;
    let items = data.items || [];
    if (spec.search === "page" && st.name) {
      const needle = st.name.toLowerCase();
      items = items.filter((it) => spec.pageText(it).toLowerCase().includes(needle));
    }
    tbody.replaceChildren(...items.map((it) => T.h("tr", {}, spec.columns.map((c) => {
      const v = c.fmt ? c.fmt(it) : T.dig(it, c.key);
      return T.h("td", { class: c.num ? "num" : "" }, v instanceof Node ? v : (c.num ? T.fmtNum(v) : (v === undefined ? "" : String(v))));
    }))));
    if (items.length === 0) tbody.append(T.h("tr", {}, T.h("td", { colspan: String(spec.columns.length), class: "empty" }, st.name ? "Nothing matches." : "None.")));
    const filtered = data.filtered_count !== data.total_count ? " (" + T.fmtNum(data.filtered_count) + " match)" : "";
    count.textContent = T.fmtNum(data.total_count) + " " + (data.total_count === 1 ? spec.noun.replace(/s$/, "") : spec.noun) + filtered;
    count.dataset.total = String(data.total_count);
    pager.replaceChildren(
      T.h("button", { type: "button", disabled: data.page <= 1, onclick: () => { st.page--; save(); refresh(); } }, "‹ Prev"),
      " page " + data.page + " of " + data.page_count + " ",
      T.h("button", { type: "button", disabled: data.page >= data.page_count, onclick: () => { st.page++; save(); refresh(); } }, "Next ›"));
  }

  drawHead();
  T.every(refresh);
  return { refresh: refresh };
};

T.link = (href, text) => T.h("a", { href: href }, text);
T.queueHref = (vhost, name) => "#/queues/" + T.enc(vhost) + "/" + T.enc(name);
T.exchangeHref = (vhost, name) => "#/exchanges/" + T.enc(vhost) + "/" + T.enc(name || "amq.default");
T.rateCol = (label, key) => ({ label: label, key: key, num: true, fmt: (r) => T.fmtRate(T.dig(r, key)) });
T.byteRateCol = (label, key) => ({ label: label, key: key, num: true, fmt: (r) => T.fmtBytes(Math.round(T.dig(r, key) || 0)) + "/s" });

T.features = function (r) {
  const f = [];
  if (r.durable) f.push(T.h("abbr", { class: "tag", title: "durable" }, "D"));
  if (r.auto_delete) f.push(T.h("abbr", { class: "tag", title: "auto-delete" }, "AD"));
  if (r.exclusive) f.push(T.h("abbr", { class: "tag", title: "exclusive" }, "Excl"));
  if (r.internal) f.push(T.h("abbr", { class: "tag", title: "internal" }, "I"));
  const args = r.arguments || {};
  for (const k of Object.keys(args)) if (k !== "x-queue-type") f.push(T.h("abbr", { class: "tag arg", title: k + " = " + JSON.stringify(args[k]) }, k.replace(/^x-/, "")));
  return T.h("span", {}, f);
};

// T.vhosts reads the vhosts once per page shown (the selects of one page
// share the answer).
T.vhosts = function () {
  if (!T.vhostsCache || T.vhostsCache.gen !== T.gen) T.vhostsCache = { gen: T.gen, p: T.get("/api/vhosts") };
  return T.vhostsCache.p;
};

// vhostSelect is a <select> of the vhosts the user can see.
T.vhostSelect = function (id) {
  const sel = T.h("select", { id: id, "aria-label": "vhost" }, T.h("option", { value: "/" }, "/"));
  T.vhosts().then((vs) => {
    sel.replaceChildren(...(vs || []).map((v) => T.h("option", { value: v.name }, v.name)));
  }).catch(() => { /* keep "/" */ });
  return sel;
};

T.route(/^\/queues$/, (main) => {
  T.listView(main, {
    id: "queues", title: "Queues", noun: "queues", path: "/api/queues", vhostPath: (v) => "/api/queues/" + v, sort: "name",
    apiColumns: "name,vhost,type,state,durable,auto_delete,exclusive,arguments,consumers,messages,messages_ready,messages_unacknowledged,message_stats.publish_details.rate,message_stats.deliver_get_details.rate,message_stats.ack_details.rate",
    columns: [
      { label: "Virtual host", key: "vhost" },
      { label: "Name", key: "name", fmt: (r) => T.link(T.queueHref(r.vhost, r.name), r.name) },
      { label: "Type", key: "type" },
      { label: "Features", key: "features", sort: "", fmt: T.features },
      { label: "State", key: "state" },
      { label: "Consumers", key: "consumers", num: true },
      { label: "Ready", key: "messages_ready", num: true },
      { label: "Unacked", key: "messages_unacknowledged", num: true },
      { label: "Total", key: "messages", num: true },
      T.rateCol("Incoming", "message_stats.publish_details.rate"),
      T.rateCol("Deliver/get", "message_stats.deliver_get_details.rate"),
      T.rateCol("Ack", "message_stats.ack_details.rate"),
    ],
    toolbar: () => declareQueueForm(),
  });
});

function declareQueueForm() {
  const vh = T.vhostSelect("declare-vhost");
  const name = T.h("input", { id: "declare-name", placeholder: "queue name", required: true });
  const type = T.h("select", { id: "declare-type", "aria-label": "type" }, ["classic", "quorum", "stream"].map((t) => T.h("option", { value: t }, t)));
  const durable = T.h("input", { type: "checkbox", id: "declare-durable", checked: true });
  return T.h("form", {
    class: "inline-form", onsubmit: async (ev) => {
      ev.preventDefault();
      const args = type.value === "classic" ? {} : { "x-queue-type": type.value };
      try {
        await T.api("PUT", "/api/queues/" + T.enc(vh.value) + "/" + T.enc(name.value), { durable: durable.checked || type.value !== "classic", auto_delete: false, arguments: args });
        T.flash("Queue " + name.value + " declared.");
        location.hash = T.queueHref(vh.value, name.value);
      } catch (e) { T.flash(e.message, "error"); }
    },
  }, "Add a queue: ", vh, name, type, T.h("label", {}, durable, " durable"), T.h("button", { type: "submit" }, "Declare"));
}

T.route(/^\/exchanges$/, (main) => {
  T.listView(main, {
    id: "exchanges", title: "Exchanges", noun: "exchanges", path: "/api/exchanges", vhostPath: (v) => "/api/exchanges/" + v, sort: "name",
    apiColumns: "name,vhost,type,durable,auto_delete,internal,arguments",
    columns: [
      { label: "Virtual host", key: "vhost" },
      { label: "Name", key: "name", fmt: (r) => T.link(T.exchangeHref(r.vhost, r.name), r.name || "(AMQP default)") },
      { label: "Type", key: "type" },
      { label: "Features", key: "features", sort: "", fmt: T.features },
    ],
  });
});

T.route(/^\/connections$/, (main) => {
  T.listView(main, {
    id: "connections", title: "Connections", noun: "connections", path: "/api/connections", vhostPath: (v) => "/api/vhosts/" + v + "/connections", sort: "name",
    columns: [
      { label: "Name", key: "name", fmt: (r) => T.h("span", { title: r.user_provided_name || "" }, r.name) },
      { label: "User", key: "user" },
      { label: "Virtual host", key: "vhost" },
      { label: "Protocol", key: "protocol" },
      { label: "TLS", key: "ssl", fmt: (r) => (r.ssl ? "yes" : "") },
      { label: "Channels", key: "channels", num: true },
      { label: "State", key: "state" },
      T.byteRateCol("From client", "recv_oct_details.rate"),
      T.byteRateCol("To client", "send_oct_details.rate"),
      { label: "Connected", key: "connected_at", fmt: (r) => T.fmtTime(r.connected_at) },
      { label: "", key: "", sort: "", fmt: (r) => T.h("button", { type: "button", class: "danger small close-connection", dataset: { name: r.name }, onclick: () => closeConnection(r.name) }, "Close") },
    ],
  });
});

async function closeConnection(name) {
  if (!T.confirmed("Close connection " + name + "?")) return;
  try {
    await T.api("DELETE", "/api/connections/" + T.enc(name), undefined, { "X-Reason": "closed from the Tern web console" });
    T.flash("Connection " + name + " closed.");
  } catch (e) { T.flash(e.message, "error"); }
}

T.route(/^\/channels$/, (main) => {
  T.listView(main, {
    id: "channels", title: "Channels", noun: "channels", path: "/api/channels", vhostPath: (v) => "/api/vhosts/" + v + "/channels", sort: "name",
    columns: [
      { label: "Channel", key: "name" },
      { label: "User", key: "user" },
      { label: "Virtual host", key: "vhost" },
      { label: "State", key: "state" },
      { label: "Consumers", key: "consumer_count", num: true },
      { label: "Prefetch", key: "prefetch_count", num: true },
      { label: "Unacked", key: "messages_unacknowledged", num: true },
    ],
  });
});

T.route(/^\/consumers$/, (main) => {
  T.listView(main, {
    id: "consumers", title: "Consumers", noun: "consumers", path: "/api/consumers", vhostPath: (v) => "/api/consumers/" + v, sort: "queue.name", search: "page",
    pageText: (r) => r.consumer_tag + " " + r.queue.name + " " + r.channel_details.name,
    columns: [
      { label: "Virtual host", key: "queue.vhost" },
      { label: "Queue", key: "queue.name", fmt: (r) => T.link(T.queueHref(r.queue.vhost, r.queue.name), r.queue.name) },
      { label: "Consumer tag", key: "consumer_tag" },
      { label: "Channel", key: "channel_details.name" },
      { label: "Ack required", key: "ack_required", fmt: (r) => (r.ack_required ? "yes" : "no") },
      { label: "Prefetch", key: "prefetch_count", num: true },
      { label: "Active", key: "active", fmt: (r) => (r.active ? "yes" : "no") },
    ],
  });
});
