// chart.js: a small time-series line chart on a canvas. The console samples
// the API every few seconds and pushes each sample here; the chart keeps
// the last `keep` samples and redraws. The canvas's data-samples and
// data-last attributes say what is drawn (the browser test reads them).
"use strict";

T.Chart = class {
  constructor(title, series, opts) {
    this.series = series; // [{key, label, color}]
    this.fmt = (opts && opts.fmt) || T.fmtNum;
    this.keep = (opts && opts.keep) || 200;
    // With opts.history the samples outlive the page: going back to the
    // overview or a queue shows the curve since it was first opened in
    // this tab (T.history keeps the 50 most recent curves).
    this.samples = opts && opts.history ? T.historyOf(opts.history) : []; // {t, v: [numbers]}
    const last = this.samples.length ? this.samples[this.samples.length - 1].v.join(",") : "";
    this.canvas = T.h("canvas", { class: "chart-canvas", "aria-label": title, role: "img", dataset: { samples: String(this.samples.length), last: last } });
    this.legend = T.h("div", { class: "chart-legend" });
    this.el = T.h("div", { class: "chart" }, T.h("div", { class: "chart-title" }, title), this.canvas, this.legend);
    this.drawLegend();
    if (this.samples.length) requestAnimationFrame(() => this.draw());
  }

  push(t, values) {
    this.samples.push({ t: t, v: this.series.map((s) => Number(values[s.key]) || 0) });
    if (this.samples.length > this.keep) this.samples.shift();
    const last = this.samples[this.samples.length - 1].v;
    this.canvas.dataset.samples = String(this.samples.length);
    this.canvas.dataset.last = last.join(",");
    this.drawLegend();
    this.draw();
  }

  drawLegend() {
    const last = this.samples.length ? this.samples[this.samples.length - 1].v : null;
    this.legend.replaceChildren(...this.series.map((s, i) =>
      T.h("span", { class: "legend-item" },
        T.h("span", { class: "swatch", dataset: { color: s.color } }),
        s.label + (last ? ": " + this.fmt(last[i]) : ""))));
    for (const sw of this.legend.querySelectorAll(".swatch")) sw.style.background = sw.dataset.color;
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth || 400, hgt = c.clientHeight || 160;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(hgt * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(hgt * dpr);
    }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, hgt);
    const left = 56, right = 8, top = 8, bottom = 20;
    const pw = w - left - right, ph = hgt - top - bottom;
    let max = 0;
    for (const s of this.samples) for (const v of s.v) max = Math.max(max, v);
    const ymax = niceCeil(max);
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = "#6b7280";
    g.strokeStyle = "#e5e7eb";
    g.lineWidth = 1;
    g.textAlign = "right";
    g.textBaseline = "middle";
    for (let i = 0; i <= 4; i++) {
      const y = top + ph - (ph * i) / 4;
      g.beginPath(); g.moveTo(left, Math.round(y) + 0.5); g.lineTo(left + pw, Math.round(y) + 0.5); g.stroke();
      g.fillText(this.fmt((ymax * i) / 4), left - 6, y);
    }
    if (this.samples.length === 0) {
      g.textAlign = "center";
      g.fillText("waiting for the first sample…", left + pw / 2, top + ph / 2);
      return;
    }
    const t1 = this.samples[this.samples.length - 1].t;
    const t0 = Math.min(this.samples[0].t, t1 - 10000);
    const x = (t) => left + (pw * (t - t0)) / Math.max(1, t1 - t0);
    const y = (v) => top + ph - (ph * v) / ymax;
    g.textBaseline = "top";
    g.textAlign = "left";
    g.fillText("-" + Math.round((t1 - t0) / 1000) + " s", left, top + ph + 5);
    g.textAlign = "right";
    g.fillText("now", left + pw, top + ph + 5);
    g.lineWidth = 2;
    g.lineJoin = "round";
    this.series.forEach((s, i) => {
      g.strokeStyle = s.color;
      g.beginPath();
      this.samples.forEach((p, j) => {
        const px = x(p.t), py = y(p.v[i]);
        if (j === 0) g.moveTo(px, py); else g.lineTo(px, py);
      });
      if (this.samples.length === 1) g.lineTo(x(t1) + 2, y(this.samples[0].v[i]));
      g.stroke();
    });
  }
};

T.history = new Map();
T.historyOf = function (key) {
  let h = T.history.get(key);
  if (h) T.history.delete(key); // re-insert: most recent last
  else h = [];
  T.history.set(key, h);
  while (T.history.size > 50) T.history.delete(T.history.keys().next().value);
  return h;
};

// niceCeil rounds up to 1, 2 or 5 times a power of ten, so the axis reads well.
function niceCeil(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}
