// corelog console: shared helpers. Every piece of data from the broker is
// put on the page as text (textContent, text nodes), never as markup.
"use strict";

window.CL = window.CL || {};

// An element: attrs may hold class, text, href, type, value, placeholder,
// id, title, min, name, and on<event> handlers; children are nodes or
// strings (made text nodes).
CL.el = function (tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
  return node;
};

// Replaces a node's children.
CL.fill = function (node, ...children) {
  node.replaceChildren();
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
};

// A call of the admin API; throws an Error whose name is the API's error
// name (Kafka's, for Kafka errors).
CL.api = async function (method, path, body) {
  const init = { method, headers: { "X-Corelog-Console": "1" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch("/api/v1" + path, init);
  let data = null;
  try {
    data = await response.json();
  } catch (e) {
    data = { error: "HTTP_" + response.status, message: response.statusText };
  }
  if (!response.ok) {
    const error = new Error(data.message || data.error);
    error.name = data.error || "HTTP_" + response.status;
    throw error;
  }
  return data;
};

CL.get = (path) => CL.api("GET", path);

// /metrics as samples: [{name, labels, value}] (Prometheus text format).
CL.metrics = async function () {
  const response = await fetch("/metrics");
  if (!response.ok) throw new Error("/metrics answered " + response.status);
  const text = await response.text();
  const samples = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const row of text.split("\n")) {
    if (row === "" || row.startsWith("#")) continue;
    const m = line.exec(row);
    if (!m) continue;
    const labels = {};
    for (const l of (m[3] || "").matchAll(label)) {
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return samples;
};

// Sums samples of one family by one label ("" for the whole family).
CL.sumBy = function (samples, name, label) {
  const out = {};
  for (const s of samples) {
    if (s.name !== name) continue;
    const key = label ? s.labels[label] || "" : "";
    out[key] = (out[key] || 0) + s.value;
  }
  return out;
};

CL.fmtBytes = function (n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? String(Math.round(n)) : n.toFixed(1)) + " " + units[i];
};

CL.fmtNum = (n) => (n === null || n === undefined ? "–" : String(n));

CL.fmtTime = function (ms) {
  if (ms === null || ms === undefined || ms < 0) return "–";
  return new Date(ms).toISOString().replace("T", " ").replace("Z", " UTC");
};

// A table: headers, then rows of cells (text or nodes).
CL.table = function (headers, rows, cls) {
  return CL.el("table", { class: cls || "grid" },
    CL.el("thead", {}, CL.el("tr", {}, headers.map((h) => CL.el("th", { text: h })))),
    CL.el("tbody", {}, rows.map((row) => CL.el("tr", {}, row.map((cell) =>
      cell instanceof Node ? CL.el("td", {}, cell) : CL.el("td", { text: CL.fmtNum(cell) }))))));
};

CL.link = (href, text) => CL.el("a", { href, text });

// The brokers an API answer could not reach (its "unavailable" list), as
// a warning line; null when every broker answered.
CL.unavailable = (answer) => answer.unavailable && answer.unavailable.length > 0
  ? CL.el("p", { class: "warn", text: "No answer from broker " + answer.unavailable.join(", ") +
      ": what only it holds is missing (–)." })
  : null;

CL.card = (label, value, cls) =>
  CL.el("div", { class: "card " + (cls || "") },
    CL.el("div", { class: "card-value", text: value }),
    CL.el("div", { class: "card-label", text: label }));

// Asks before a change; resolves true when confirmed.
CL.confirm = function (text) {
  const modal = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  modal.classList.remove("hidden");
  return new Promise((resolve) => {
    const yes = document.getElementById("confirm-yes");
    const no = document.getElementById("confirm-no");
    const done = (answer) => {
      modal.classList.add("hidden");
      yes.removeEventListener("click", onYes);
      no.removeEventListener("click", onNo);
      resolve(answer);
    };
    const onYes = () => done(true);
    const onNo = () => done(false);
    yes.addEventListener("click", onYes);
    no.addEventListener("click", onNo);
  });
};

// A message line under a form: what a change did, or why it failed.
CL.notice = function (node, error, text) {
  node.className = error ? "notice error" : "notice ok";
  node.textContent = error ? error.name + ": " + error.message : text;
};

// Bytes of a record field as a node: null, text (JSON pretty-printed) or
// a hex dump; always as text.
CL.field = function (field) {
  if (field === null || field === undefined) return CL.el("span", { class: "null", text: "null" });
  let shown = field.data;
  let cls = "value";
  if (field.encoding === "hex") {
    shown = CL.hexdump(field.data);
    cls = "value hex";
  } else if (!field.truncated && /^\s*[[{]/.test(field.data)) {
    try {
      shown = JSON.stringify(JSON.parse(field.data), null, 2);
      cls = "value json";
    } catch (e) {
      // Not JSON after all: the text as it is.
    }
  }
  return CL.el("div", {},
    CL.el("pre", { class: cls, text: shown }),
    field.truncated ? CL.el("span", { class: "muted", text: "(first bytes of " + field.size + ")" }) : null);
};

// Hex (two digits a byte) as lines of 16 bytes with their printable ASCII.
CL.hexdump = function (hex) {
  const lines = [];
  for (let at = 0; at < hex.length; at += 32) {
    const chunk = hex.slice(at, at + 32);
    const bytes = chunk.match(/../g) || [];
    const ascii = bytes.map((b) => {
      const c = parseInt(b, 16);
      return c >= 32 && c < 127 ? String.fromCharCode(c) : ".";
    }).join("");
    lines.push((at / 2).toString(16).padStart(8, "0") + "  " + bytes.join(" ").padEnd(48) + " |" + ascii + "|");
  }
  return lines.join("\n");
};

// The query of a hash route ("#/messages?topic=a") as an object.
CL.hashQuery = function () {
  const hash = location.hash || "#/";
  const at = hash.indexOf("?");
  return Object.fromEntries(new URLSearchParams(at < 0 ? "" : hash.slice(at + 1)));
};
