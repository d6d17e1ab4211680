// corelog console: bounded histories of live figures and the line charts
// drawn from them on <canvas>.
"use strict";

window.CL = window.CL || {};

// Points kept per history: 150 samples, five minutes at one every 2 s.
CL.HISTORY_POINTS = 150;
// Series one chart draws at most (the first by name).
CL.CHART_SERIES_MAX = 16;

// A bounded history of named series: push(time, {name: value}).
CL.History = class {
  constructor(points) {
    this.points = points || CL.HISTORY_POINTS;
    this.times = [];
    this.series = {};
  }

  push(time, values) {
    this.times.push(time);
    const n = this.times.length;
    for (const [name, value] of Object.entries(values)) {
      if (!this.series[name]) {
        if (Object.keys(this.series).length >= CL.CHART_SERIES_MAX) continue;
        this.series[name] = new Array(n - 1).fill(null);
      }
    }
    for (const [name, list] of Object.entries(this.series)) {
      list.push(name in values ? values[name] : null);
    }
    if (n > this.points) {
      this.times.shift();
      for (const list of Object.values(this.series)) list.shift();
    }
  }
};

// Turns counters into per-second rates between two samples.
CL.Rates = class {
  constructor() {
    this.last = null;
  }

  // counters: {name: total}; returns {name: per second} (empty the first time).
  next(time, counters) {
    const out = {};
    if (this.last) {
      const seconds = (time - this.last.time) / 1000;
      if (seconds > 0) {
        for (const [name, total] of Object.entries(counters)) {
          const before = this.last.counters[name];
          if (before !== undefined && total >= before) out[name] = (total - before) / seconds;
        }
      }
    }
    this.last = { time, counters };
    return out;
  }
};

CL.COLORS = ["#1f6feb", "#d73a49", "#28a745", "#f66a0a", "#6f42c1", "#0598bc",
  "#b08800", "#e83e8c", "#5a6270", "#22863a", "#005cc5", "#cb2431",
  "#6a737d", "#2188ff", "#a371f7", "#ff7b72"];

// Draws a history as lines on a canvas, with the y axis from 0 to the
// largest value (or `opts.max`), a label of that maximum and a legend.
CL.drawChart = function (canvas, history, opts) {
  opts = opts || {};
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 480;
  const height = canvas.clientHeight || 180;
  if (canvas.width !== width * ratio) canvas.width = width * ratio;
  if (canvas.height !== height * ratio) canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const names = Object.keys(history.series).sort();
  let max = opts.max || 0;
  if (!opts.max) {
    for (const name of names) {
      for (const v of history.series[name]) if (v !== null && v > max) max = v;
    }
  }
  if (max <= 0) max = 1;
  const format = opts.format || ((v) => (Math.round(v * 100) / 100).toString());
  const left = 8, top = 18, right = width - 8, legend = 18 * Math.ceil(names.length / 4);
  const bottom = height - 8 - legend;
  ctx.strokeStyle = "#d0d7de";
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(left, bottom + 0.5);
  ctx.lineTo(right, bottom + 0.5);
  ctx.moveTo(left, top + 0.5);
  ctx.lineTo(right, top + 0.5);
  ctx.stroke();
  ctx.fillStyle = "#57606a";
  ctx.font = "11px sans-serif";
  ctx.fillText(format(max) + (opts.unit || ""), left, top - 5);
  const n = history.times.length;
  // The newest point at the right edge, one step per sample; a short
  // history spreads over the width (at least 10 steps), a long one
  // scrolls.
  const step = (right - left) / Math.max(n - 1, 10);
  const x = (i) => right - (n - 1 - i) * step;
  const y = (v) => bottom - (Math.min(v, max) / max) * (bottom - top);
  names.forEach((name, index) => {
    const color = CL.COLORS[index % CL.COLORS.length];
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let drawing = false;
    history.series[name].forEach((v, i) => {
      if (v === null) {
        drawing = false;
        return;
      }
      if (drawing) ctx.lineTo(x(i), y(v));
      else ctx.moveTo(x(i), y(v));
      drawing = true;
    });
    ctx.stroke();
    const lx = left + (index % 4) * ((right - left) / 4);
    const ly = bottom + 16 + 18 * Math.floor(index / 4);
    ctx.fillStyle = color;
    ctx.fillRect(lx, ly - 8, 10, 3);
    ctx.fillStyle = "#24292f";
    const last = history.series[name][n - 1];
    ctx.fillText(name + (last === null || last === undefined ? "" : " " + format(last)), lx + 14, ly - 4);
  });
  if (n === 0) {
    ctx.fillStyle = "#57606a";
    ctx.fillText("collecting…", left + 4, (top + bottom) / 2);
  }
};

// A titled chart panel; returns {node, draw(history)}.
CL.chartPanel = function (title, opts) {
  const canvas = CL.el("canvas", { class: "chart" });
  const node = CL.el("section", { class: "panel" }, CL.el("h3", { text: title }), canvas);
  return { node, draw: (history) => CL.drawChart(canvas, history, opts) };
};
