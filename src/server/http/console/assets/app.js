// corelog console: the router. Each page has its own URL (#/topics,
// #/topics/NAME, #/groups, #/groups/ID, #/messages?topic=..., #/brokers,
// #/brokers/ID); the shown page refreshes every CL.REFRESH_MS without a
// reload.
"use strict";

window.CL = window.CL || {};

CL.REFRESH_MS = 2000;

CL.routes = [
  [/^\/$/, "overview", () => ({})],
  [/^\/topics$/, "topics", () => ({})],
  [/^\/topics\/(.+)$/, "topic", (m) => ({ name: decodeURIComponent(m[1]) })],
  [/^\/groups$/, "groups", () => ({})],
  [/^\/groups\/(.+)$/, "group", (m) => ({ id: decodeURIComponent(m[1]) })],
  [/^\/messages$/, "messages", () => ({})],
  [/^\/brokers$/, "brokers", () => ({})],
  [/^\/brokers\/(-?\d+)$/, "brokers", (m) => ({ id: m[1] })],
];

// The nav entry each page lights.
CL.navOf = { overview: "overview", topics: "topics", topic: "topics", groups: "groups",
  group: "groups", messages: "messages", brokers: "brokers" };

CL.current = null;

CL.route = function () {
  const hash = (location.hash || "#/").slice(1);
  const path = hash.split("?")[0] || "/";
  const root = document.getElementById("page");
  for (const [pattern, page, params] of CL.routes) {
    const m = pattern.exec(path);
    if (!m) continue;
    for (const a of document.querySelectorAll("#nav a")) {
      a.classList.toggle("active", a.dataset.page === CL.navOf[page]);
    }
    document.title = "corelog · " + page;
    CL.current = { update: CL.pages[page](root, params(m)), busy: false };
    CL.refresh();
    return;
  }
  CL.fill(root, CL.el("h2", { text: "Not found" }), CL.el("p", {}, "No page " + path + ". ", CL.link("#/", "Overview")));
  CL.current = null;
};

// Runs the shown page's update once (never two at a time).
CL.refresh = async function () {
  const page = CL.current;
  if (!page || page.busy) return;
  page.busy = true;
  const status = document.getElementById("status");
  try {
    await page.update();
    status.className = "live";
    status.textContent = "live · " + new Date().toLocaleTimeString();
  } catch (e) {
    status.className = "failed";
    status.textContent = e.name + ": " + e.message;
  } finally {
    page.busy = false;
  }
};

CL.start = async function () {
  try {
    const cluster = await CL.get("/cluster");
    CL.readOnly = cluster.read_only;
    CL.nodeId = cluster.node_id;
  } catch (e) {
    CL.readOnly = true;
    CL.nodeId = 0;
  }
  document.getElementById("mode").textContent = CL.readOnly ? "read-only" : "";
  document.body.classList.toggle("read-only", CL.readOnly);
  window.addEventListener("hashchange", CL.route);
  CL.route();
  setInterval(() => {
    if (!document.hidden) CL.refresh();
  }, CL.REFRESH_MS);
};

document.addEventListener("DOMContentLoaded", CL.start);
