// A row's card: the conversation, its signals, why it was picked, the rows it displaced.
// Every value from the row reaches the DOM through el(), as text.
import {$, el, fmt} from "./dom.js";

function turnsBlock(messages, caption) {
  return el("div", {class: "conversation"},
    caption ? el("div", {class: "caption"}, caption) : null,
    messages.map((m) => el("div", {class: `turn role-${m.role}`},
      el("div", {class: "role"}, m.role),
      el("pre", {class: "content"}, m.content))));
}

function signalsTable(c) {
  const s = c.signals;
  const rows = [
    ["quality", fmt(s.quality)], ["relevance margin", fmt(s.relevance)], ["IFD", fmt(s.ifd)],
    ["perplexity", fmt(s.perplexity, 1)],
    ["judge", s.judge_score === null ? (s.judge_status || "–") :
      `${fmt(s.judge_score, 1)} (${s.judge_status || "?"})`],
    ["failed rules", s.failed_rules.length ? s.failed_rules.join(", ") : "none"],
  ];
  return el("table", {class: "kv"}, rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
}

function selectionBlock(c) {
  const s = c.selection;
  const lines = [
    `cluster ${s.cluster}: rank ${s.rank ?? "–"} of ${s.survivors} survivors by selection score ` +
    `(${fmt(s.score)}); ${s.picks} pick(s) in this cluster now, each at least ` +
    `${s.min_distance} cosine distance from the others.`,
  ];
  if (c.origin === "refill") lines.push(`Refill for the rejected pick ${c.replaces}: ${c.note || ""}`);
  return el("div", {class: "why"}, lines.map((l) => el("p", {}, l)));
}

function displacedBlock(c) {
  if (!c.displaced.length) return el("p", {class: "muted"}, "It displaced no row (no duplicate, no conflict).");
  const header = el("tr", {}, el("th", {}, "row"), el("th", {}, "relation"), el("th", {}, "quality"),
    el("th", {}, "relevance"), el("th", {}, "IFD"), el("th", {}, "judge"), el("th", {}, "text"));
  const mine = el("tr", {class: "self"}, el("td", {}, c.row_id), el("td", {}, "this pick"),
    el("td", {}, fmt(c.signals.quality)), el("td", {}, fmt(c.signals.relevance)),
    el("td", {}, fmt(c.signals.ifd)), el("td", {}, fmt(c.signals.judge_score, 1)),
    el("td", {}, el("pre", {class: "clip"}, c.original[c.original.length - 1].content)));
  const rows = c.displaced.map((d) => el("tr", {dataset: {displaced: d.id}},
    el("td", {}, d.id),
    el("td", {}, d.reason && d.reason !== d.relation ? `${d.relation}: ${d.reason}` : d.relation,
      el("div", {class: "muted"}, d.detail || "")),
    el("td", {}, fmt(d.signals.quality)), el("td", {}, fmt(d.signals.relevance)),
    el("td", {}, fmt(d.signals.ifd)), el("td", {}, fmt(d.signals.judge_score, 1)),
    el("td", {}, el("pre", {class: "clip prompt"}, d.prompt), el("pre", {class: "clip"}, d.response))));
  return el("table", {class: "displaced"}, el("thead", {}, header), el("tbody", {}, mine, rows));
}

function statusLine(c, actions) {
  const parts = [el("span", {class: `badge state-${c.state}`}, c.state), ` version ${c.version}`];
  if (c.state !== "unreviewed" && c.reviewer) parts.push(` · by ${c.reviewer} at ${c.time}`);
  if (c.state === "rejected" && c.reason) parts.push(` · reason: ${c.reason}`);
  if (c.replaced_by) {
    parts.push(" · replaced by ",
      el("a", {href: "#", onclick: (e) => { e.preventDefault(); actions.open(c.replaced_by); }}, c.replaced_by));
  } else if (c.state === "rejected" && c.note) parts.push(` · ${c.note}`);
  return el("div", {class: "status", id: "status"}, parts);
}

function verdictBar(c, actions) {
  return el("div", {class: "actions"},
    el("button", {id: "do-accept", onclick: actions.accept},
      c.state === "edited" ? "Accept original (a)" : "Accept (a)"),
    el("button", {id: "do-reject", onclick: actions.reject}, "Reject (r)"),
    el("button", {id: "do-edit", onclick: actions.edit}, "Edit (e)"),
    el("span", {class: "spacer"}),
    el("button", {onclick: actions.previous}, "◀ previous (k)"),
    el("button", {onclick: actions.next}, "next (j) ▶"));
}

export function renderCard(c, actions) {
  const card = $("card");
  card.hidden = false;
  card.dataset.id = c.row_id;
  card.dataset.version = String(c.version);
  card.dataset.state = c.state;
  const extras = Object.entries(c.extras || {}).filter(([, v]) => v !== null && v !== "");
  const conversation = c.state === "edited" && c.messages
    ? el("div", {class: "side-by-side"}, turnsBlock(c.original, "original"),
      turnsBlock(c.messages, `edit (version ${c.version})`))
    : turnsBlock(c.original, null);
  // replaceChildren would show a null as the text "null": drop the absent parts.
  card.replaceChildren(...[
    el("h2", {}, c.row_id, el("span", {class: "muted source"}, c.source || "")),
    statusLine(c, actions),
    verdictBar(c, actions),
    el("div", {id: "panel"}),
    c.rebuilt ? el("p", {class: "warn"}, "Conversation rebuilt from the ledger's prompt and response " +
      "(this run's ledger has no messages column); a system turn would be missing.") : null,
    conversation,
    el("div", {class: "columns"},
      el("section", {}, el("h3", {}, "Signals"), signalsTable(c),
        extras.length ? el("table", {class: "kv extras"},
          extras.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, typeof v === "string" ? v : JSON.stringify(v))))) : null),
      el("section", {}, el("h3", {}, "Why it was picked"), selectionBlock(c))),
    el("section", {}, el("h3", {}, `Rows it displaced (${c.displaced.length})`), displacedBlock(c)),
    c.history.length ? el("details", {class: "history"}, el("summary", {}, `History (${c.history.length})`),
      el("ol", {}, c.history.map((h) => el("li", {},
        `v${h.version} ${h.state}` + (h.reviewer ? ` by ${h.reviewer}` : "") + ` at ${h.time}` +
        (h.reason ? `: ${h.reason}` : "") + (h.messages ? " (edit)" : ""))))) : null,
  ].filter(Boolean));
  document.body.dataset.ready = "1";
}
