// queue.js: one queue (depth and rate charts, details, consumers,
// bindings; publish, get, purge, delete) and one exchange (bindings,
// publish).
"use strict";

T.route(/^\/queues\/([^/]+)\/([^/]+)$/, (main, vhost, name) => {
  const base = "/api/queues/" + T.enc(vhost) + "/" + T.enc(name);
  const depth = new T.Chart("Queued messages", T.depthSeries, { fmt: T.fmtNum, history: "q-depth " + vhost + "/" + name });
  const rates = new T.Chart("Message rates (per second)", T.rateSeries.slice(0, 3), { fmt: T.fmtNum, history: "q-rates " + vhost + "/" + name });
  depth.canvas.id = "chart-queue-depth";
  rates.canvas.id = "chart-queue-rates";
  const details = T.h("dl", { class: "details", id: "queue-details" });
  const consumers = T.h("tbody");
  const bindings = T.h("tbody");
  const total = T.h("span", { id: "q-messages", class: "big" }, "–");
  main.append(
    T.h("div", { class: "page-head" },
      T.h("h1", {}, T.h("a", { href: "#/queues" }, "Queues"), " / ", T.h("span", { id: "queue-name" }, name), T.h("span", { class: "muted" }, " in " + vhost)),
      T.h("div", { class: "headline" }, total, " messages")),
    T.h("div", { class: "charts" }, depth.el, rates.el),
    T.h("div", { class: "columns" },
      T.h("section", {}, T.h("h2", {}, "Details"), details),
      T.h("section", {}, T.h("h2", {}, "Actions"), queueActions(vhost, name, base))),
    T.h("h2", {}, "Consumers"),
    T.h("div", { class: "table-wrap" }, T.h("table", { class: "list", id: "queue-consumers" },
      T.h("thead", {}, T.h("tr", {}, ["Consumer tag", "Channel", "Ack required", "Prefetch", "Active"].map((l) => T.h("th", {}, l)))), consumers)),
    T.h("h2", {}, "Bindings"),
    T.h("div", { class: "table-wrap" }, T.h("table", { class: "list", id: "queue-bindings" },
      T.h("thead", {}, T.h("tr", {}, ["From exchange", "Routing key", "Arguments"].map((l) => T.h("th", {}, l)))), bindings)));

  let tick = 0;
  T.every(async () => {
    let q;
    try {
      q = await T.get(base);
    } catch (e) {
      if (e.status === 404) { total.textContent = "–"; throw new Error("queue " + name + " does not exist (any more)"); }
      throw e;
    }
    const now = Date.now();
    total.textContent = T.fmtNum(q.messages);
    total.dataset.messages = String(q.messages);
    depth.push(now, { ready: q.messages_ready, unacked: q.messages_unacknowledged });
    rates.push(now, T.rates(q.message_stats));
    const rows = [
      ["Type", q.type], ["State", q.state], ["Node", q.node], ["Durable", q.durable ? "yes" : "no"],
      ["Auto-delete", q.auto_delete ? "yes" : "no"], ["Exclusive", q.exclusive ? "yes" : "no"],
      ["Consumers", T.fmtNum(q.consumers)], ["Ready", T.fmtNum(q.messages_ready)], ["Unacked", T.fmtNum(q.messages_unacknowledged)],
      ["Ready bytes", T.fmtBytes(q.message_bytes_ready)],
      ["Arguments", Object.keys(q.arguments || {}).length ? JSON.stringify(q.arguments) : "none"],
    ];
    if (q.policy) rows.push(["Policy", q.policy]);
    details.replaceChildren(...rows.flatMap(([k, v]) => [T.h("dt", {}, k), T.h("dd", {}, v === undefined ? "" : String(v))]));
    const cs = q.consumer_details || [];
    consumers.replaceChildren(...cs.map((c) => T.h("tr", {},
      T.h("td", {}, c.consumer_tag), T.h("td", {}, T.dig(c, "channel_details.name") || ""),
      T.h("td", {}, c.ack_required ? "yes" : "no"), T.h("td", {}, T.fmtNum(c.prefetch_count)), T.h("td", {}, c.active ? "yes" : "no"))));
    if (!cs.length) consumers.append(T.h("tr", {}, T.h("td", { colspan: "5", class: "empty" }, "No consumers.")));
    if (tick++ % 3 === 0) {
      const bs = await T.get(base + "/bindings");
      bindings.replaceChildren(...bs.map((b) => T.h("tr", {},
        T.h("td", {}, b.source ? T.link(T.exchangeHref(b.vhost, b.source), b.source) : "(AMQP default)"),
        T.h("td", {}, b.routing_key), T.h("td", {}, Object.keys(b.arguments || {}).length ? JSON.stringify(b.arguments) : ""))));
    }
  });
});

function queueActions(vhost, name, base) {
  const out = T.h("div", { class: "get-results", id: "get-results" });
  // Publish to the queue through the default exchange.
  const payload = T.h("textarea", { id: "publish-payload", rows: "3", placeholder: "payload" });
  const persistent = T.h("input", { type: "checkbox", id: "publish-persistent", checked: true });
  const publish = T.h("form", {
    class: "action", onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const r = await T.api("POST", "/api/exchanges/" + T.enc(vhost) + "/amq.default/publish",
          { properties: persistent.checked ? { delivery_mode: 2 } : {}, routing_key: name, payload: payload.value, payload_encoding: "string" });
        T.flash(r && r.routed ? "Message published." : "Message published but not routed.", r && r.routed ? "ok" : "error");
      } catch (e) { T.flash(e.message, "error"); }
    },
  }, T.h("h3", {}, "Publish a message"), payload, T.h("label", {}, persistent, " persistent"), T.h("button", { type: "submit", id: "publish-submit" }, "Publish"));

  const count = T.h("input", { type: "number", id: "get-count", min: "1", max: "100", value: "1" });
  const mode = T.h("select", { id: "get-ackmode", "aria-label": "ack mode" },
    T.h("option", { value: "ack_requeue_true" }, "Peek (requeue)"),
    T.h("option", { value: "ack_requeue_false" }, "Take (ack, removes)"),
    T.h("option", { value: "reject_requeue_false" }, "Reject (dead-letter)"));
  const get = T.h("form", {
    class: "action", onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const ms = await T.api("POST", base + "/get", { count: Number(count.value) || 1, ackmode: mode.value, encoding: "auto", truncate: 50000 });
        out.replaceChildren(...(ms.length ? ms.map((m, i) => T.h("div", { class: "message" },
          T.h("div", { class: "muted" }, "#" + (i + 1) + " · exchange " + (m.exchange || "(default)") + " · key " + m.routing_key + " · " + m.payload_bytes + " bytes" + (m.redelivered ? " · redelivered" : "") + " · " + m.message_count + " left"),
          T.h("pre", {}, m.payload), Object.keys(m.properties || {}).length ? T.h("div", { class: "muted" }, JSON.stringify(m.properties)) : null))
          : [T.h("p", { class: "muted" }, "The queue is empty.")]));
      } catch (e) { T.flash(e.message, "error"); }
    },
  }, T.h("h3", {}, "Get messages"), T.h("label", {}, "count ", count), mode, T.h("button", { type: "submit", id: "get-submit" }, "Get"));

  const purge = T.h("button", {
    type: "button", class: "danger", id: "purge", onclick: async () => {
      if (!T.confirmed("Purge every ready message of " + name + "?")) return;
      try { await T.api("DELETE", base + "/contents"); T.flash("Queue " + name + " purged."); } catch (e) { T.flash(e.message, "error"); }
    },
  }, "Purge");
  const ifEmpty = T.h("input", { type: "checkbox", id: "delete-if-empty" });
  const del = T.h("button", {
    type: "button", class: "danger", id: "delete", onclick: async () => {
      if (!T.confirmed("Delete queue " + name + (ifEmpty.checked ? " if it is empty" : " and its messages") + "?")) return;
      try {
        await T.api("DELETE", base + T.q({ "if-empty": ifEmpty.checked ? "true" : "" }));
        T.flash("Queue " + name + " deleted.");
        location.hash = "#/queues";
      } catch (e) { T.flash(e.message, "error"); }
    },
  }, "Delete");
  return T.h("div", {}, publish, get, out,
    T.h("div", { class: "action" }, T.h("h3", {}, "Purge or delete"), purge, " ", del, " ", T.h("label", {}, ifEmpty, " only if empty")));
}

T.route(/^\/exchanges\/([^/]+)\/([^/]+)$/, (main, vhost, name) => {
  const base = "/api/exchanges/" + T.enc(vhost) + "/" + T.enc(name);
  const details = T.h("dl", { class: "details" });
  const out = T.h("tbody");
  const key = T.h("input", { id: "xpublish-key", placeholder: "routing key" });
  const payload = T.h("textarea", { id: "xpublish-payload", rows: "3", placeholder: "payload" });
  main.append(
    T.h("div", { class: "page-head" }, T.h("h1", {}, T.h("a", { href: "#/exchanges" }, "Exchanges"), " / ", name === "amq.default" ? "(AMQP default)" : name, T.h("span", { class: "muted" }, " in " + vhost))),
    T.h("div", { class: "columns" },
      T.h("section", {}, T.h("h2", {}, "Details"), details),
      T.h("section", {}, T.h("h2", {}, "Publish a message"), T.h("form", {
        class: "action", onsubmit: async (ev) => {
          ev.preventDefault();
          try {
            const r = await T.api("POST", base + "/publish", { properties: {}, routing_key: key.value, payload: payload.value, payload_encoding: "string" });
            T.flash(r && r.routed ? "Message published and routed." : "Message published but not routed.", r && r.routed ? "ok" : "error");
          } catch (e) { T.flash(e.message, "error"); }
        },
      }, key, payload, T.h("button", { type: "submit", id: "xpublish-submit" }, "Publish")))),
    T.h("h2", {}, "Bindings from this exchange"),
    T.h("div", { class: "table-wrap" }, T.h("table", { class: "list", id: "exchange-bindings" },
      T.h("thead", {}, T.h("tr", {}, ["To", "Type", "Routing key", "Arguments"].map((l) => T.h("th", {}, l)))), out)));
  T.every(async () => {
    const x = await T.get(base);
    details.replaceChildren(...[["Type", x.type], ["Durable", x.durable ? "yes" : "no"], ["Auto-delete", x.auto_delete ? "yes" : "no"],
      ["Internal", x.internal ? "yes" : "no"], ["Arguments", Object.keys(x.arguments || {}).length ? JSON.stringify(x.arguments) : "none"]]
      .flatMap(([k, v]) => [T.h("dt", {}, k), T.h("dd", {}, String(v))]));
    const bs = name === "amq.default" ? [] : await T.get(base + "/bindings/source");
    out.replaceChildren(...bs.map((b) => T.h("tr", {},
      T.h("td", {}, b.destination_type === "queue" ? T.link(T.queueHref(b.vhost, b.destination), b.destination) : T.link(T.exchangeHref(b.vhost, b.destination), b.destination)),
      T.h("td", {}, b.destination_type), T.h("td", {}, b.routing_key), T.h("td", {}, Object.keys(b.arguments || {}).length ? JSON.stringify(b.arguments) : ""))));
    if (!bs.length) out.append(T.h("tr", {}, T.h("td", { colspan: "4", class: "empty" }, "No bindings.")));
  });
});
