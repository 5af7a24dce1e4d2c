// finesift review: the page's state, the queue, verdicts and keys. Every piece of row
// data reaches the DOM as text (dom.js el(), textContent), never as markup.
import {renderCard} from "./card.js";
import {$, el, fmt} from "./dom.js";

const S = {
  info: null,
  rows: [],       // the queue as shown (filtered, ordered)
  current: null,  // id of the open row
  card: null,     // its card from /api/rows/{id}
  loading: false, // a row is being fetched: its card replaces the one on screen
  mode: "view",   // view | reject | edit
  busy: false,
};

// --- small helpers -------------------------------------------------------------------------

function notice(text, kind = "info") {
  const box = $("notice");
  box.textContent = text;
  box.className = kind;
  box.hidden = !text;
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body),
  };
  let response;
  try {
    response = await fetch(path, options);
  } catch (e) {  // no answer at all: the server stopped, or the network is down
    return {status: 0, ok: false, data: {error: `the review server did not answer (${e.message}): is it still running?`}};
  }
  let data = null;
  try { data = await response.json(); } catch (e) { data = {error: response.statusText}; }
  return {status: response.status, ok: response.ok, data};
}

function setBusy(busy) {
  S.busy = busy;
  document.body.dataset.busy = busy ? "1" : "0";
}

// --- the queue -----------------------------------------------------------------------------

function filterParams() {
  const params = new URLSearchParams();
  const pairs = {
    q: $("f-search").value.trim(), cluster: $("f-cluster").value, state: $("f-state").value,
    reason: $("f-reason").value, flag: $("f-flag").value, signal: $("f-signal").value,
    order: $("f-order").value,
  };
  if (pairs.signal) { pairs.low = $("f-low").value; pairs.high = $("f-high").value; }
  for (const [k, v] of Object.entries(pairs)) if (v !== "" && v !== undefined) params.set(k, v);
  return params;
}

async function loadQueue() {
  const result = await api("/api/queue?" + filterParams().toString());
  if (!result.ok) { notice(result.data.error || "the queue could not be loaded", "error"); return; }
  S.rows = result.data.rows;
  renderProgress(result.data.progress);
  renderFacets(result.data.facets);
  renderQueue();
}

function renderProgress(p) {
  $("progress-text").textContent =
    `${p.verified} of ${p.in_budget} verified · ${p.rejected} rejected` +
    (p.refills ? ` (${p.refills} refilled)` : "") + ` · ${p.unreviewed} to go` +
    (p.unfilled ? ` · ${p.unfilled} slot(s) could not be refilled` : "");
  $("progress-fill").style.width = p.in_budget ? `${(100 * p.verified) / p.in_budget}%` : "0";
  $("progress").dataset.verified = p.verified;
}

function fillSelect(select, values, label) {
  const keep = select.value;
  const first = select.options[0];
  select.replaceChildren(first);
  for (const v of values) select.append(el("option", {value: v.value}, label(v)));
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

function renderFacets(f) {
  fillSelect($("f-cluster"), f.clusters.map((c) => ({value: c})), (v) => `cluster ${v.value}`);
  fillSelect($("f-reason"), f.reasons.map((r) => ({value: r.reason, n: r.rows})),
    (v) => `${v.value} (${v.n})`);
  fillSelect($("f-flag"), f.flags.map((r) => ({value: r.flag, n: r.rows})),
    (v) => `${v.value} (${v.n})`);
  fillSelect($("f-signal"), f.signals.map((s) => ({value: s})), (v) => v.value);
}

function renderQueue() {
  const list = $("queue");
  list.replaceChildren();
  for (const row of S.rows) {
    const meta = [`c${row.cluster}`, `q ${fmt(row.quality, 2)}`];
    if (row.relevance !== null) meta.push(`rel ${fmt(row.relevance, 2)}`);
    const item = el("li", {
      class: `state-${row.state}` + (row.id === S.current ? " current" : ""),
      dataset: {
        id: row.id, cluster: String(row.cluster), state: row.state,
        replaces: row.replaces || "", replacedBy: row.replaced_by || "",
      },
      onclick: () => openRow(row.id),
    },
    el("span", {class: "badge"}, row.state),
    el("span", {class: "title"}, row.title || row.id),
    el("span", {class: "meta"}, meta.join(" · "),
      row.flags.filter((f) => f !== "refill").map((f) => el("span", {class: "flag"}, f)),
      row.replaces ? el("span", {class: "refill"}, `refill for ${row.replaces}`) : null,
      row.replaced_by ? el("span", {class: "refill"}, `→ ${row.replaced_by}`) : null));
    list.append(item);
  }
  $("shown").textContent = `${S.rows.length} shown`;
  $("empty").hidden = S.rows.length > 0;
  document.body.dataset.queue = String(S.rows.length);
}

function indexOfCurrent() {
  return S.rows.findIndex((r) => r.id === S.current);
}

function move(step) {
  if (!S.rows.length) return;
  const i = indexOfCurrent();
  const next = i < 0 ? 0 : Math.min(S.rows.length - 1, Math.max(0, i + step));
  openRow(S.rows[next].id);
}

// --- a row's card --------------------------------------------------------------------------

let opening = 0;  // the newest openRow call: an older one's late answer must not replace its card

function setLoading(loading) {
  S.loading = loading;
  document.body.dataset.loading = loading ? "1" : "0";
}

async function openRow(id) {
  const ticket = ++opening;
  setLoading(true);
  const result = await api("/api/rows/" + encodeURIComponent(id));
  if (ticket !== opening) return;  // another row was opened meanwhile (a click after a verdict)
  setLoading(false);
  if (!result.ok) { notice(result.data.error || `row ${id} could not be loaded`, "error"); return; }
  S.current = id;
  S.card = result.data;
  S.mode = "view";
  history.replaceState(null, "", "#row=" + encodeURIComponent(id));
  for (const li of $("queue").children) li.classList.toggle("current", li.dataset.id === id);
  const active = [...$("queue").children].find((li) => li.dataset.id === id);
  if (active) active.scrollIntoView({block: "nearest"});
  renderCard(S.card, CARD_ACTIONS);
}

const CARD_ACTIONS = {
  accept: () => sendVerdict("accept"), reject: () => showReject(), edit: () => showEdit(),
  previous: () => move(-1), next: () => move(1), open: (id) => openRow(id),
};

// --- verdicts ------------------------------------------------------------------------------

function reviewer() {
  const name = $("reviewer").value.trim();
  if (!name) {
    notice("Type your name as reviewer first: it is recorded with every verdict.", "error");
    $("reviewer").focus();
  }
  return name;
}

function showReject() {
  if (!S.card || S.loading) return;  // the card on screen is being replaced
  S.mode = "reject";
  const reasons = Object.entries(S.info.reject_reasons);
  const panel = el("div", {class: "panel reject", id: "reject-panel"},
    el("div", {class: "caption"}, "Reject: pick a reason (1-7), then Enter"),
    reasons.map(([code, text], i) => el("label", {class: "choice"},
      el("input", {type: "radio", name: "reason", value: code, checked: i === 0}),
      el("kbd", {}, String(i + 1)), ` ${code}`, el("span", {class: "muted"}, ` ${text}`))),
    el("label", {class: "choice"},
      el("input", {type: "radio", name: "reason", value: "other"}), el("kbd", {}, String(reasons.length + 1)),
      " other: ", el("input", {id: "reason-text", type: "text", maxlength: "500", placeholder: "your reason",
        onfocus: () => { panel.querySelector('input[value="other"]').checked = true; }})),
    el("div", {class: "actions"},
      el("button", {id: "confirm-reject", onclick: () => confirmReject()}, "Reject (Enter)"),
      el("button", {onclick: () => closePanel()}, "Cancel (Esc)")));
  $("panel").replaceWith(panel);
  panel.querySelector("input[name=reason]").focus();
}

function confirmReject() {
  const chosen = document.querySelector("#reject-panel input[name=reason]:checked");
  if (!chosen) return;
  const reason = chosen.value === "other" ? $("reason-text").value.trim() : chosen.value;
  if (!reason) { notice("Write the reason, or pick one from the list.", "error"); return; }
  sendVerdict("reject", {reason});
}

function showEdit() {
  if (!S.card || S.loading) return;  // the card on screen is being replaced
  S.mode = "edit";
  const current = S.card.messages || S.card.original;
  const panel = el("div", {class: "panel edit", id: "edit-panel"},
    el("div", {class: "caption"}, "Edit the text (the original is kept); Ctrl+Enter saves"),
    current.map((m, i) => el("label", {class: "edit-turn"}, el("div", {class: "role"}, m.role),
      el("textarea", {dataset: {turn: String(i), role: m.role}, rows: String(Math.min(12, 2 + m.content.split("\n").length))})
    )),
    el("div", {class: "actions"},
      el("button", {id: "save-edit", onclick: () => saveEdit()}, "Save edit (Ctrl+Enter)"),
      el("button", {onclick: () => closePanel()}, "Cancel (Esc)")));
  // Values are set as properties, so the text is never parsed as markup.
  panel.querySelectorAll("textarea").forEach((t, i) => { t.value = current[i].content; });
  $("panel").replaceWith(panel);
  const areas = panel.querySelectorAll("textarea");
  areas[areas.length - 1].focus();
}

function saveEdit() {
  const messages = [...document.querySelectorAll("#edit-panel textarea")].map((t) => ({
    role: t.dataset.role, content: t.value,
  }));
  sendVerdict("edit", {messages});
}

function closePanel() {
  S.mode = "view";
  const open = document.querySelector(".panel");
  if (open) open.replaceWith(el("div", {id: "panel"}));
}

async function sendVerdict(kind, extra = {}) {
  if (!S.card || S.busy || S.loading) return;
  const name = reviewer();
  if (!name) return;
  const id = S.card.row_id;
  const i = indexOfCurrent();
  setBusy(true);
  try {
    const result = await api(`/api/rows/${encodeURIComponent(id)}/verdict`,
      {verdict: kind, version: S.card.version, reviewer: name, ...extra});
    if (result.status === 409) {
      const cur = result.data.current || {};
      notice(`Not saved: ${id} changed meanwhile (now ${cur.state}` +
        (cur.reviewer ? ` by ${cur.reviewer} at ${cur.time}` : "") + `, version ${cur.version}). ` +
        "Look at it again.", "error");
      await loadQueue();
      await openRow(id);
      return;
    }
    if (!result.ok) { notice(result.data.error || "the verdict was not saved", "error"); return; }
    const refill = result.data.refill;
    notice(`${id}: ${result.data.item.state}` +
      (refill ? `; ${refill.row_id} of cluster ${refill.cluster} joins the queue in its place` : "") +
      (result.data.item.note ? `; ${result.data.item.note}` : ""));
    await loadQueue();
    const stay = S.rows.findIndex((r) => r.id === id);
    const next = S.rows[(stay >= 0 ? stay : i) + (stay >= 0 ? 1 : 0)] || S.rows[S.rows.length - 1];
    if (next) await openRow(next.id);
  } finally {
    setBusy(false);
  }
}

async function exportReview() {
  setBusy(true);
  try {
    const result = await api("/api/export", {});
    if (!result.ok) { notice(result.data.error || "export failed", "error"); return; }
    const d = result.data;
    notice(`Exported ${d.rows} verified rows to ${d.paths.verified}; ledger review column ` +
      `written (${d.counts.accepted} accepted, ${d.counts.edited} edited, ${d.counts.rejected} ` +
      `rejected, ${d.counts.unreviewed} unreviewed).`);
    document.body.dataset.exported = String(d.rows);
  } finally {
    setBusy(false);
  }
}

// --- keyboard ------------------------------------------------------------------------------

function onKey(event) {
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName);
  if (event.key === "Escape") { closePanel(); event.target.blur && typing && event.target.blur(); return; }
  if (S.mode === "edit") {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); saveEdit(); }
    return;
  }
  if (S.mode === "reject") {
    const radios = [...document.querySelectorAll("#reject-panel input[name=reason]")];
    if (event.key === "Enter") { event.preventDefault(); confirmReject(); return; }
    if (!typing || event.target.type === "radio") {
      const n = Number(event.key);
      if (n >= 1 && n <= radios.length) {
        event.preventDefault();
        radios[n - 1].checked = true;
        if (radios[n - 1].value === "other") $("reason-text").focus();
      }
    }
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  // While a row loads, a, r and e do nothing (sendVerdict, showReject and showEdit check):
  // the card on screen is about to go, and a panel opened now would be wiped by the new one.
  const actions = {
    a: () => sendVerdict("accept"), r: () => showReject(), e: () => showEdit(),
    j: () => move(1), ArrowDown: () => move(1), ArrowRight: () => move(1),
    k: () => move(-1), ArrowUp: () => move(-1), ArrowLeft: () => move(-1),
    "/": () => $("f-search").focus(),
  };
  if (actions[event.key]) { event.preventDefault(); actions[event.key](); }
}

// --- start ---------------------------------------------------------------------------------

async function start() {
  setBusy(true);
  const result = await api("/api/info");
  if (!result.ok) { notice(result.data.error || "the review could not be loaded", "error"); return; }
  S.info = result.data;
  $("run-name").textContent = S.info.name;
  document.title = `finesift review: ${S.info.name}`;
  fillSelect($("f-state"), S.info.states.map((s) => ({value: s})), (v) => v.value);
  for (const o of S.info.orders) $("f-order").append(el("option", {value: o}, o));
  $("reviewer").value = localStorage.getItem("finesift-reviewer") || "";
  $("reviewer").addEventListener("change", () => localStorage.setItem("finesift-reviewer", $("reviewer").value.trim()));
  let timer = null;
  const refresh = () => { clearTimeout(timer); timer = setTimeout(loadQueue, 150); };
  $("filters").addEventListener("input", refresh);
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("export").addEventListener("click", exportReview);
  document.addEventListener("keydown", onKey);
  await loadQueue();
  const wanted = decodeURIComponent((location.hash.match(/row=([^&]+)/) || [])[1] || "");
  const first = S.rows.find((r) => r.id === wanted) || S.rows[0];
  if (first) await openRow(first.id);
  setBusy(false);
}

start();
