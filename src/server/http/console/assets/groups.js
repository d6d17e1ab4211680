// corelog console: the consumer groups pages, with lag per partition over
// time and the offset reset of an inactive group.
"use strict";

window.CL = window.CL || {};
CL.pages = CL.pages || {};

CL.pages.groups = function (root) {
  const list = CL.el("div");
  CL.fill(root, CL.el("h2", { text: "Consumer groups" }), list);
  return async function update() {
    const answer = await CL.get("/groups");
    if (answer.groups.length === 0) {
      CL.fill(list, CL.el("p", { class: "muted", text: "No consumer groups yet." }));
      return;
    }
    CL.fill(list,
      CL.unavailable(answer),
      CL.table(["group", "state", "type", "members", "lag"], answer.groups.map((g) => [
        CL.link("#/groups/" + encodeURIComponent(g.group_id), g.group_id),
        CL.el("span", { class: "state state-" + g.state, text: g.state }),
        g.type || g.protocol_type, g.members, g.lag])),
      answer.truncated ? CL.el("p", { class: "muted", text: "(first groups only)" }) : null);
  };
};

// Lag histories by group, kept while the console is open (bounded: the
// last few groups looked at).
CL.lagHistories = new Map();
CL.LAG_GROUPS_KEPT = 8;

CL.lagHistory = function (id) {
  if (!CL.lagHistories.has(id)) {
    if (CL.lagHistories.size >= CL.LAG_GROUPS_KEPT) {
      CL.lagHistories.delete(CL.lagHistories.keys().next().value);
    }
    CL.lagHistories.set(id, new CL.History());
  }
  return CL.lagHistories.get(id);
};

CL.pages.group = function (root, params) {
  const id = params.id;
  const head = CL.el("div");
  const members = CL.el("div");
  const offsets = CL.el("div");
  const chart = CL.chartPanel("Lag per partition", { format: (v) => String(Math.round(v)) });
  const reset = CL.el("div");
  let resetForm = null;
  CL.fill(root,
    CL.el("h2", {}, CL.link("#/groups", "Consumer groups"), " / ", CL.el("span", { id: "group-id", text: id })),
    head, CL.el("h3", { text: "Lag" }), offsets, CL.el("div", { class: "charts" }, chart.node),
    CL.el("h3", { text: "Members" }), members, reset);
  return async function update() {
    const g = await CL.get("/groups/" + encodeURIComponent(id));
    CL.fill(head, CL.el("div", { class: "cards" },
      CL.card("state", g.state, g.state === "Stable" || g.state === "Empty" ? "good" : "warn"),
      CL.card("members", g.members.length),
      CL.card("total lag", g.lag, g.lag > 0 ? "warn" : "good"),
      CL.card("protocol", g.protocol || g.protocol_type || "–")));
    CL.fill(offsets, CL.table(["topic", "partition", "committed offset", "log end offset", "lag", "member"],
      g.offsets.map((o) => [o.topic, o.partition, o.committed_offset, o.log_end_offset,
        CL.el("span", { class: "lag", text: CL.fmtNum(o.lag) }), o.member_id || ""])));
    const lag = {};
    for (const o of g.offsets) if (o.lag !== null) lag[o.topic + "-" + o.partition] = o.lag;
    const history = CL.lagHistory(id);
    history.push(Date.now(), lag);
    chart.draw(history);
    CL.fill(members, g.members.length === 0
      ? CL.el("p", { class: "muted", text: "No members: the group is inactive." })
      : CL.table(["member", "client id", "host", "assignment"], g.members.map((m) => [
        m.member_id, m.client_id, m.client_host,
        m.assignment.map((a) => a.topic + ": " + a.partitions.join(", ")).join("; ")])));
    const inactive = g.state === "Empty" || g.state === "Dead";
    if (CL.readOnly || !inactive) {
      resetForm = null;
      CL.fill(reset, CL.readOnly ? null : CL.el("p", { class: "muted",
        text: "Offsets can be reset once the group is inactive (no members)." }));
    } else if (!resetForm) {
      const topics = [...new Set(g.offsets.map((o) => o.topic))];
      resetForm = CL.resetForm(id, topics);
      CL.fill(reset, resetForm);
    }
  };
};

// Reset an inactive group's offsets of one topic, with a confirmation.
CL.resetForm = function (id, topics) {
  const topic = CL.el("select", { id: "reset-topic" }, topics.map((t) => CL.el("option", { value: t, text: t })));
  const to = CL.el("select", { id: "reset-to" },
    ["earliest", "latest", "offset", "timestamp"].map((v) => CL.el("option", { value: v, text: "to " + v })));
  const value = CL.el("input", { id: "reset-value", placeholder: "offset, or time in ms" });
  const notice = CL.el("p", { class: "notice" });
  const submit = async (event) => {
    event.preventDefault();
    const body = { topic: topic.value, to: to.value };
    if (to.value === "offset") body.offset = Number(value.value);
    if (to.value === "timestamp") body.timestamp = Number(value.value);
    const target = to.value === "offset" || to.value === "timestamp" ? to.value + " " + value.value : to.value;
    if (!(await CL.confirm("Reset offsets of group " + id + " on " + body.topic + " to " + target + "?"))) return;
    try {
      const done = await CL.api("POST", "/groups/" + encodeURIComponent(id) + "/offsets", body);
      CL.notice(notice, null, "Reset " + done.offsets.length + " partition(s).");
      CL.refresh();
    } catch (e) {
      CL.notice(notice, e);
    }
  };
  return CL.el("form", { class: "panel form", id: "reset-form", onsubmit: submit },
    CL.el("h3", { text: "Reset offsets" }),
    CL.el("div", { class: "row" }, topic, to, value, CL.el("button", { type: "submit", text: "Reset" })), notice);
};
