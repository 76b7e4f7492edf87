// overview.js: totals, live charts of message rates and queue depths, and
// the deepest queues.
"use strict";

T.rateSeries = [
  { key: "publish", label: "Publish", color: "#2563eb" },
  { key: "deliver_get", label: "Deliver/get", color: "#16a34a" },
  { key: "ack", label: "Ack", color: "#9333ea" },
  { key: "redeliver", label: "Redeliver", color: "#dc2626" },
];
T.depthSeries = [
  { key: "ready", label: "Ready", color: "#0891b2" },
  { key: "unacked", label: "Unacked", color: "#ea580c" },
];

T.rates = (ms) => {
  const r = (k) => T.dig(ms || {}, k + "_details.rate") || 0;
  return { publish: r("publish"), deliver_get: r("deliver_get"), ack: r("ack"), redeliver: r("redeliver") };
};

T.tile = (id, label) => T.h("div", { class: "tile" }, T.h("div", { class: "tile-value", id: id }, "–"), T.h("div", { class: "tile-label" }, label));

T.route(/^\/$/, (main) => {
  const rates = new T.Chart("Message rates (per second)", T.rateSeries, { fmt: T.fmtNum, history: "overview-rates" });
  const depth = new T.Chart("Queued messages", T.depthSeries, { fmt: T.fmtNum, history: "overview-depth" });
  rates.canvas.id = "chart-rates";
  depth.canvas.id = "chart-depth";
  const info = T.h("p", { class: "node-info", id: "node-info" });
  const top = T.h("tbody");
  main.append(
    T.h("div", { class: "page-head" }, T.h("h1", {}, "Overview"), info),
    T.h("div", { class: "tiles" },
      T.tile("ov-connections", "Connections"), T.tile("ov-channels", "Channels"), T.tile("ov-consumers", "Consumers"),
      T.tile("ov-exchanges", "Exchanges"), T.tile("ov-queues", "Queues"),
      T.tile("ov-ready", "Ready messages"), T.tile("ov-unacked", "Unacked messages")),
    T.h("div", { class: "charts" }, rates.el, depth.el),
    T.h("h2", {}, "Deepest queues"),
    T.h("div", { class: "table-wrap" }, T.h("table", { class: "list", id: "top-queues" },
      T.h("thead", {}, T.h("tr", {}, ["Virtual host", "Name", "Consumers", "Ready", "Unacked", "Incoming"].map((l, i) => T.h("th", { class: i >= 2 ? "num" : "" }, l)))),
      top)));
  const set = (id, v) => { document.getElementById(id).textContent = T.fmtNum(v); };
  let tick = 0;
  T.every(async () => {
    const o = await T.get("/api/overview");
    const now = Date.now();
    const ot = o.object_totals || {}, qt = o.queue_totals || {};
    set("ov-connections", ot.connections); set("ov-channels", ot.channels); set("ov-consumers", ot.consumers);
    set("ov-exchanges", ot.exchanges); set("ov-queues", ot.queues);
    set("ov-ready", qt.messages_ready); set("ov-unacked", qt.messages_unacknowledged);
    const ports = (o.listeners || []).map((l) => l.protocol + " :" + l.port).join(", ");
    info.textContent = [o.product_name + " " + o.product_version, "node " + o.node, o.cluster_name ? "cluster " + o.cluster_name : "", ports].filter(Boolean).join(" · ");
    rates.push(now, T.rates(o.message_stats));
    depth.push(now, { ready: qt.messages_ready || 0, unacked: qt.messages_unacknowledged || 0 });
    // The deepest queues change slowly; read them every other sample.
    if (tick++ % 2 === 0) {
      const qs = await T.get("/api/queues" + T.q({ page: 1, page_size: 10, sort: "messages", sort_reverse: "true", columns: "name,vhost,consumers,messages_ready,messages_unacknowledged,message_stats.publish_details.rate" }));
      top.replaceChildren(...qs.items.map((q) => T.h("tr", {},
        T.h("td", {}, q.vhost), T.h("td", {}, T.link(T.queueHref(q.vhost, q.name), q.name)),
        T.h("td", { class: "num" }, T.fmtNum(q.consumers)), T.h("td", { class: "num" }, T.fmtNum(q.messages_ready)),
        T.h("td", { class: "num" }, T.fmtNum(q.messages_unacknowledged)),
        T.h("td", { class: "num" }, T.fmtRate(T.dig(q, "message_stats.publish_details.rate"))))));
      if (!qs.items.length) top.append(T.h("tr", {}, T.h("td", { colspan: "6", class: "empty" }, "No queues.")));
    }
  });
});
