// corelog console: the overview, topics, topic, messages and broker pages.
// Each page builds its frame once and returns update(), which the router
// calls now and every few seconds: it reads the API and refills the
// page's data, leaving forms as the user left them.
"use strict";

window.CL = window.CL || {};
CL.pages = CL.pages || {};

// Live figures kept across pages (bounded histories, chart.js).
CL.live = {
  load: new CL.History(),
  requests: new CL.History(),
  bytesIn: new CL.History(),
  busyRates: new CL.Rates(),
  requestRates: new CL.Rates(),
  bytesRates: new CL.Rates(),
  topicRates: new CL.Rates(),
  topicRate: {},
};

// One /metrics sample into the histories: per-core load (the shard
// thread's CPU seconds per second), per-core requests per second, bytes
// in per second, and each topic's bytes in per second.
CL.sampleMetrics = async function () {
  const samples = await CL.metrics();
  const now = Date.now();
  const shard = (m) => Object.fromEntries(Object.entries(m).map(([k, v]) => ["core " + k, v]));
  const busy = CL.live.busyRates.next(now, shard(CL.sumBy(samples, "corelog_shard_cpu_seconds_total", "shard")));
  const load = Object.fromEntries(Object.entries(busy).map(([k, v]) => [k, Math.min(v * 100, 100)]));
  CL.live.load.push(now, load);
  CL.live.requests.push(now, CL.live.requestRates.next(now, shard(CL.sumBy(samples, "corelog_shard_requests_total", "shard"))));
  CL.live.bytesIn.push(now, CL.live.bytesRates.next(now, { "bytes in": (CL.sumBy(samples, "corelog_partition_bytes_in_total", "")[""] || 0) }));
  CL.live.topicRate = CL.live.topicRates.next(now, CL.sumBy(samples, "corelog_partition_bytes_in_total", "topic"));
};

CL.pages.overview = function (root) {
  const cards = CL.el("div", { class: "cards" });
  const brokers = CL.el("div");
  const load = CL.chartPanel("Load per core (% CPU)", { unit: "%", format: (v) => v.toFixed(1) });
  const requests = CL.chartPanel("Requests per second per core", { format: (v) => v.toFixed(1) });
  const bytesIn = CL.chartPanel("Produced bytes per second", { format: (v) => CL.fmtBytes(v) });
  CL.fill(root,
    CL.el("h2", { text: "Cluster overview" }), cards,
    CL.el("h3", { text: "Brokers" }), brokers,
    CL.el("div", { class: "charts" }, load.node, requests.node, bytesIn.node));
  return async function update() {
    const [cluster] = await Promise.all([CL.get("/cluster"), CL.sampleMetrics().catch(() => null)]);
    CL.fill(cards,
      CL.card("cluster id", cluster.cluster_id),
      CL.card("controller", cluster.controller_id === null ? "none" : "broker " + cluster.controller_id),
      CL.card("brokers", cluster.brokers.length),
      CL.card("topics", cluster.topics),
      CL.card("partitions", cluster.partitions),
      CL.card("under-replicated", cluster.under_replicated_partitions,
        cluster.under_replicated_partitions > 0 ? "warn" : "good"),
      CL.card("offline", cluster.offline_partitions, cluster.offline_partitions > 0 ? "warn" : "good"),
      CL.card("cores (shards)", cluster.shards));
    CL.fill(brokers, CL.table(["id", "host", "port", "state", "role"],
      cluster.brokers.map((b) => [
        CL.link("#/brokers/" + b.id, String(b.id)), b.host, b.port,
        CL.el("span", { class: "state state-" + b.state, text: b.state }),
        b.id === cluster.controller_id ? "controller" : ""])));
    load.draw(CL.live.load);
    requests.draw(CL.live.requests);
    bytesIn.draw(CL.live.bytesIn);
  };
};

CL.pages.topics = function (root) {
  const list = CL.el("div");
  const form = CL.readOnly ? null : CL.createTopicForm();
  CL.fill(root, CL.el("h2", { text: "Topics" }), form, list);
  return async function update() {
    const [answer] = await Promise.all([CL.get("/topics"), CL.sampleMetrics().catch(() => null)]);
    const rows = answer.topics.map((t) => [
      CL.link("#/topics/" + encodeURIComponent(t.name), t.name),
      t.partitions, t.replication_factor,
      CL.el("span", { class: t.under_replicated > 0 ? "warn" : "", text: t.under_replicated }),
      CL.fmtBytes(t.size_bytes),
      t.name in CL.live.topicRate ? CL.fmtBytes(CL.live.topicRate[t.name]) + "/s" : "–",
      t.internal ? "internal" : ""]);
    CL.fill(list,
      CL.unavailable(answer),
      CL.table(["topic", "partitions", "replication", "under-replicated", "size", "bytes in", ""], rows),
      answer.truncated ? CL.el("p", { class: "muted", text: "(first topics only)" }) : null);
  };
};

// The create-topic form (not shown read-only): name, partitions,
// replication factor and configs (key=value lines), with a confirmation.
CL.createTopicForm = function () {
  const name = CL.el("input", { id: "new-topic-name", placeholder: "topic name", required: "" });
  const partitions = CL.el("input", { id: "new-topic-partitions", type: "number", min: 1, value: 1 });
  const replication = CL.el("input", { id: "new-topic-replication", type: "number", min: 1, placeholder: "default" });
  const configs = CL.el("textarea", { id: "new-topic-configs", rows: 2, placeholder: "configs, one key=value a line (optional)" });
  const notice = CL.el("p", { class: "notice" });
  const submit = async (event) => {
    event.preventDefault();
    const body = { name: name.value.trim(), partitions: Number(partitions.value) || -1, configs: {} };
    if (replication.value) body.replication_factor = Number(replication.value);
    for (const line of configs.value.split("\n")) {
      const at = line.indexOf("=");
      if (at > 0) body.configs[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    const ok = await CL.confirm("Create topic " + body.name + " with " + body.partitions + " partition(s)?");
    if (!ok) return;
    try {
      await CL.api("POST", "/topics", body);
      CL.notice(notice, null, "Created topic " + body.name + ".");
      name.value = "";
      CL.refresh();
    } catch (e) {
      CL.notice(notice, e);
    }
  };
  return CL.el("form", { class: "panel form", id: "create-topic", onsubmit: submit },
    CL.el("h3", { text: "Create a topic" }),
    CL.el("div", { class: "row" }, name, partitions, replication,
      CL.el("button", { type: "submit", id: "create-topic-submit", text: "Create" })),
    configs, notice);
};

CL.pages.topic = function (root, params) {
  const name = params.name;
  const head = CL.el("div");
  const partitions = CL.el("div");
  const configs = CL.el("div");
  const actions = CL.readOnly ? null : CL.topicActions(name);
  CL.fill(root, CL.el("h2", {}, CL.link("#/topics", "Topics"), " / ", CL.el("span", { id: "topic-name", text: name })),
    head, CL.el("h3", { text: "Partitions" }), partitions, actions, CL.el("h3", { text: "Configs" }), configs);
  return async function update() {
    const t = await CL.get("/topics/" + encodeURIComponent(name));
    CL.fill(head, CL.el("div", { class: "cards" },
      CL.card("partitions", t.partitions.length),
      CL.card("topic id", t.topic_id),
      CL.card("records (end − start)", t.partitions.reduce((n, p) => n + ((p.log_end_offset || 0) - (p.log_start_offset || 0)), 0)),
      CL.card("size", CL.fmtBytes(t.partitions.reduce((n, p) => n + (p.size_bytes || 0), 0)))));
    CL.fill(partitions, CL.unavailable(t), CL.table(
      ["partition", "leader", "replicas", "in-sync replicas", "log start", "log end", "size", ""],
      t.partitions.map((p) => [p.partition, p.leader, p.replicas.join(", "),
        CL.el("span", { class: p.isr.length < p.replicas.length ? "warn" : "", text: p.isr.join(", ") }),
        p.log_start_offset, p.log_end_offset, CL.fmtBytes(p.size_bytes),
        CL.link("#/messages?topic=" + encodeURIComponent(name) + "&partition=" + p.partition, "messages")])));
    CL.fill(configs, CL.table(["config", "value", "source"],
      t.configs.map((c) => [c.name, c.sensitive ? "(sensitive)" : c.value === null ? "null" : c.value, c.source])));
  };
};

// Add partitions, alter or reset a config, delete: each asks first.
CL.topicActions = function (name) {
  const notice = CL.el("p", { class: "notice" });
  const run = async (question, call, done) => {
    if (!(await CL.confirm(question))) return;
    try {
      await call();
      CL.notice(notice, null, done);
      CL.refresh();
    } catch (e) {
      CL.notice(notice, e);
    }
  };
  const count = CL.el("input", { id: "partition-count", type: "number", min: 1, placeholder: "new total" });
  const key = CL.el("input", { id: "config-key", placeholder: "config, e.g. retention.ms" });
  const value = CL.el("input", { id: "config-value", placeholder: "value" });
  return CL.el("section", { class: "panel form" },
    CL.el("h3", { text: "Change" }),
    CL.el("form", { class: "row", onsubmit: (e) => {
      e.preventDefault();
      const n = Number(count.value);
      run("Increase " + name + " to " + n + " partitions? Partitions cannot be removed.",
        () => CL.api("POST", "/topics/" + encodeURIComponent(name) + "/partitions", { count: n }),
        name + " now has " + n + " partitions.");
    } }, CL.el("label", { text: "Partitions" }), count, CL.el("button", { type: "submit", text: "Add partitions" })),
    CL.el("form", { class: "row", onsubmit: (e) => {
      e.preventDefault();
      const k = key.value.trim(), v = value.value;
      run("Set " + k + "=" + v + " on " + name + "?",
        () => CL.api("POST", "/topics/" + encodeURIComponent(name) + "/configs", { set: { [k]: v } }),
        "Set " + k + ".");
    } }, CL.el("label", { text: "Config" }), key, value,
      CL.el("button", { type: "submit", text: "Set" }),
      CL.el("button", { type: "button", text: "Reset to default", onclick: () => {
        const k = key.value.trim();
        run("Reset " + k + " of " + name + " to its default?",
          () => CL.api("POST", "/topics/" + encodeURIComponent(name) + "/configs", { delete: [k] }),
          "Reset " + k + ".");
      } })),
    CL.el("div", { class: "row" }, CL.el("button", { type: "button", class: "danger", id: "delete-topic", text: "Delete topic", onclick: async () => {
      if (!(await CL.confirm("Delete topic " + name + " and all its records? This cannot be undone."))) return;
      try {
        await CL.api("DELETE", "/topics/" + encodeURIComponent(name));
        location.hash = "#/topics";
      } catch (e) {
        CL.notice(notice, e);
      }
    } })),
    notice);
};

CL.pages.messages = function (root) {
  const q = CL.hashQuery();
  const topic = CL.el("input", { id: "msg-topic", placeholder: "topic", value: q.topic || "" });
  const partition = CL.el("input", { id: "msg-partition", type: "number", min: 0, value: q.partition || 0 });
  const from = CL.el("select", { id: "msg-from" },
    ["newest", "offset", "timestamp"].map((v) => CL.el("option", { value: v, text: v === "newest" ? "newest records" : "from " + v })));
  from.value = q.offset ? "offset" : q.timestamp ? "timestamp" : "newest";
  const offset = CL.el("input", { id: "msg-offset", type: "number", min: 0, placeholder: "offset", value: q.offset || "" });
  const time = CL.el("input", { id: "msg-time", type: "datetime-local", step: 1 });
  if (q.timestamp) time.value = new Date(Number(q.timestamp) - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 19);
  const max = CL.el("input", { id: "msg-max", type: "number", min: 1, max: 100, value: q.max || 20 });
  // Only the input the chosen start needs.
  const showStart = () => {
    offset.hidden = from.value !== "offset";
    time.hidden = from.value !== "timestamp";
  };
  from.addEventListener("change", showStart);
  showStart();
  const result = CL.el("div", { id: "messages" });
  const show = (e) => {
    e.preventDefault();
    const params = new URLSearchParams({ topic: topic.value.trim(), partition: partition.value || 0, max: max.value || 20 });
    if (from.value === "offset") params.set("offset", offset.value || 0);
    if (from.value === "timestamp" && time.value) params.set("timestamp", new Date(time.value).getTime());
    location.hash = "#/messages?" + params.toString();
  };
  CL.fill(root, CL.el("h2", { text: "Messages" }),
    CL.el("form", { class: "panel form row", id: "msg-form", onsubmit: show },
      topic, CL.el("label", { text: "partition" }), partition, from, offset, time,
      CL.el("label", { text: "max" }), max, CL.el("button", { type: "submit", text: "Show" })),
    result);
  return async function update() {
    if (!q.topic) {
      CL.fill(result, CL.el("p", { class: "muted", text: "Pick a topic and partition." }));
      return;
    }
    const params = new URLSearchParams({ partition: q.partition || 0, max: q.max || 20 });
    if (q.offset) params.set("offset", q.offset);
    if (q.timestamp) params.set("timestamp", q.timestamp);
    const m = await CL.get("/topics/" + encodeURIComponent(q.topic) + "/messages?" + params.toString());
    CL.fill(result,
      CL.el("p", { class: "muted", text: q.topic + "-" + m.partition + ": offsets " + m.log_start_offset + " to " +
        m.log_end_offset + " (end); showing " + m.records.length + " from " + m.start_offset }),
      CL.table(["offset", "timestamp", "key", "value", "headers"], m.records.map((r) => [
        r.offset, CL.fmtTime(r.timestamp), CL.field(r.key), CL.field(r.value),
        CL.el("div", {}, r.headers.map((h) => CL.el("div", { class: "header" },
          CL.field(h.key), CL.field(h.value))))]), "grid records"));
  };
};

CL.pages.brokers = function (root, params) {
  const brokers = CL.el("div");
  const configs = CL.el("div");
  const filter = CL.el("input", { id: "config-filter", placeholder: "filter configs", oninput: () => CL.refresh() });
  const title = CL.el("h3");
  CL.fill(root, CL.el("h2", { text: "Brokers" }), brokers, title, filter, configs);
  return async function update() {
    const answer = await CL.get("/brokers");
    const id = params.id !== undefined ? params.id : String(CL.nodeId);
    CL.fill(brokers, CL.table(["id", "host", "port", "state", ""], answer.brokers.map((b) => [
      b.id, b.host, b.port, CL.el("span", { class: "state state-" + b.state, text: b.state }),
      CL.link("#/brokers/" + b.id, "configs")])));
    title.textContent = "Configs of broker " + id;
    const c = await CL.get("/brokers/" + encodeURIComponent(id) + "/configs");
    const wanted = filter.value.trim().toLowerCase();
    CL.fill(configs, CL.table(["config", "value", "source", ""],
      c.configs.filter((x) => x.name.toLowerCase().includes(wanted)).map((x) => [
        x.name, x.sensitive ? "(sensitive)" : x.value === null ? "null" : x.value, x.source,
        x.read_only ? "static" : "dynamic"])));
  };
};
