"""The HTML of report.html: sections, tables and the page template, no script, no links out.

Figures come from :mod:`jobs.report.plots` as base64 PNG, so the file opens offline.
Every value from the data is HTML-escaped.
"""

from __future__ import annotations

import html
from dataclasses import asdict
from typing import Any

import numpy as np

from infra.errors import InputError
from jobs.report.data import ROWS_PER_REASON, RunData
from quality import schema

TEXT_CHARS = 600
"""Characters of a prompt or response shown in a table cell."""


def render(data: RunData) -> str:
    """The whole page as one HTML string."""
    from jobs.report import plots

    sections = [_overview(data)]
    if data.by_reason:
        sections.append(
            _section(
                "counts",
                "Rows by status and reason",
                _img(plots.reason_bars(data.by_reason), "rows by reason")
                + _reason_table(data.by_reason),
            )
        )
    if data.quality_selected is not None:
        sections.append(
            _section(
                "quality",
                "Quality scores: selected vs dropped",
                _img(
                    plots.quality_histograms(data.quality_selected, data.quality_dropped),
                    "quality histograms",
                ),
            )
        )
    if data.review:
        sections.append(_section("review", "Review", _review(data.review)))
    if data.by_reason:
        sections.append(_section("map", "Embedding space", _map(data)))
        sections.append(_section("dropped", "Rows not selected, by reason", _examples(data)))
    if data.training:
        sections.append(
            _section(
                "training",
                "Training",
                _img(plots.training_curves(data.training), "training curves")
                + _training_table(data),
            )
        )
    if data.eval:
        sections.append(_section("eval", "Evaluation", _eval_table(data.eval)))
    if data.experiment:
        sections.append(
            _section(
                "experiment",
                "Experiment: curated vs random vs longest vs full",
                _experiment(data.experiment),
            )
        )
    title = f"finesift report: {data.run_dir.resolve().name}"
    nav = "".join(
        f'<a href="#{anchor}">{_e(label)}</a>'
        for anchor, label in NAV.items()
        if f'<section id="{anchor}">' in "".join(sections)
    )
    return PAGE.format(title=_e(title), nav=nav, body="\n".join(sections))


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _clip(text: str | None) -> str:
    text = text or ""
    return _e(text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + " …")


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>\n{body}\n</section>'


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{_e(alt)}">'


def _table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _num(value: Any, pattern: str = "{:,}") -> str:
    return "-" if value is None else _e(pattern.format(value))


def _overview(data: RunData) -> str:
    s = data.summary or {}
    items = [("run directory", _e(data.location or data.run_dir.resolve()))]
    if s:
        items.append(("input rows", _num(s.get("input_rows"))))
        items += [(k, _num(v)) for k, v in (s.get("by_status") or {}).items()]
        cov = s.get("coverage") or {}
        if cov.get("selected") is not None:
            items.append(
                (
                    "coverage (mean distance to nearest pick, lower is better)",
                    f"selected {cov['selected']:.4f} vs random {cov.get('random', 0):.4f}",
                )
            )
        secs = s.get("seconds") or {}
        if secs:
            items.append(
                (
                    "curation time",
                    _e(f"{sum(secs.values()):.1f} s (")
                    + ", ".join(f"{_e(k)} {v:.1f}" for k, v in secs.items())
                    + ")",
                )
            )
    rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in items)
    return _section("overview", "Overview", f'<table class="kv">{rows}</table>')


def _reason_table(by_reason: list[dict[str, Any]]) -> str:
    rules = _rule_descriptions()
    rows = [
        [
            _e(r["status"]),
            f"<code>{_e(r['reason'] or '-')}</code>",
            _num(r["rows"]),
            _e(schema.REASONS.get(r["reason"] or "") or rules.get(r["reason"] or "", "")),
        ]
        for r in by_reason
    ]
    return _table(["status", "reason", "rows", "meaning"], rows)


def _rule_descriptions() -> dict[str, str]:
    try:
        from quality.heuristics import describe_rules

        return {r["name"]: r["description"] for r in describe_rules()}
    except (ImportError, KeyError):
        return {}


def _review(review: dict[str, Any]) -> str:
    """Verdict counts and rejection reasons of `finesift review` (the ledger's review column)."""
    counts = review["counts"]
    order = ["accepted", "edited", "rejected", "unreviewed"]
    rows = [[_e(v), _num(counts.get(v, 0))] for v in order]
    reasons = [[_e(reason), _num(n)] for reason, n in review["reasons"]]
    who = ", ".join(review["reviewers"]) or "-"
    return (
        f'<p class="note">Verdicts on the picks (and their refills), by {_e(who)}.</p>'
        + _table(["verdict", "rows"], rows)
        + (_table(["rejection reason", "rows"], reasons) if reasons else "")
    )


def _map(data: RunData) -> str:
    from jobs.report import plots

    table = data.map_table
    if table is None or table.num_rows == 0:
        return (
            '<p class="note">No map.parquet in this run: the 2-D map needs a curate run '
            "that embedded rows (rerun `finesift curate` to get it).</p>"
        )
    selected = np.asarray([s == schema.SELECTED for s in table["status"].to_pylist()])
    uri = plots.embedding_map(
        np.asarray(table["x"].to_numpy(zero_copy_only=False), dtype=np.float64),
        np.asarray(table["y"].to_numpy(zero_copy_only=False), dtype=np.float64),
        np.asarray(table["cluster"].to_numpy(zero_copy_only=False), dtype=np.int64),
        selected,
    )
    return (
        _img(uri, "embedding map") + f'<p class="note">{table.num_rows:,} embedded rows '
        "(a sample when there are more), projected on their first two principal "
        "components; ringed points are selected.</p>"
    )


def _examples(data: RunData) -> str:
    parts = [
        f'<p class="note">Each table shows the first {ROWS_PER_REASON} rows of a reason '
        "(in ledger order); duplicates and conflicts sit beside the row that was kept "
        "instead. ledger.parquet has every row.</p>"
    ]
    for group in data.examples:
        shown = group["shown"]
        rows = []
        for row, partner, partner_id in shown:
            rows.append([_row_cell(row), _partner_cell(partner, partner_id)])
        label = f"{group['status']}: {group['reason'] or '-'}"
        count = f"{group['rows']:,} rows" + (
            f", first {len(shown)} shown" if group["rows"] > len(shown) else ""
        )
        parts.append(
            f"<details><summary><code>{_e(label)}</code> ({_e(count)})</summary>"
            + _table(["row", "kept instead (duplicate_of / kept_instead)"], rows, "rows")
            + "</details>"
        )
    return "\n".join(parts)


def _row_cell(row: dict[str, Any]) -> str:
    quality = row.get("quality")
    meta = f"<b>{_e(row['id'])}</b> · {_e(row.get('source'))}"
    if quality is not None:
        meta += f" · quality {quality:.2f}"
    text = (
        f'<div class="meta">{meta}</div><div class="p">{_clip(row.get("prompt"))}</div>'
        f'<div class="r">{_clip(row.get("response"))}</div>'
    )
    if row.get("detail"):
        text += f'<div class="d">{_clip(row["detail"])}</div>'
    return text


def _partner_cell(partner: dict[str, Any] | None, partner_id: str | None) -> str:
    if partner is not None:
        return _row_cell(partner)
    if partner_id:
        return f'<span class="note">{_e(partner_id)} (not in the ledger)</span>'
    return '<span class="note">-</span>'


def _training_table(data: RunData) -> str:
    rows = []
    for run in data.training:
        data_info = run.get("data") or {}
        rows.append(
            [
                _e(run["name"]),
                _num(run.get("train_rows")),
                _num(run.get("steps")),
                _num(run.get("tokens_seen")),
                _num(run.get("runtime_s"), "{:,.0f} s"),
                _num(run.get("base_eval_loss"), "{:.4f}"),
                _num(run.get("final_eval_loss"), "{:.4f}"),
                _e(data_info.get("path")),
            ]
        )
    return _table(
        [
            "adapter",
            "rows",
            "steps",
            "tokens",
            "time",
            "held-out loss (base)",
            "held-out loss (adapter)",
            "data",
        ],
        rows,
    )


def _eval_table(data: dict[str, Any]) -> str:
    from jobs.evaluation.result import EvalResult

    try:
        result = EvalResult.from_dict(data)
    except (
        TypeError,
        ValueError,
    ) as exc:  # a field missing or malformed: not written by `finesift eval`
        raise InputError(f"eval.json cannot be read ({exc}); rerun `finesift eval`") from exc
    from jobs.evaluation.table import EVAL_COLUMNS, EVAL_LEGEND, eval_cells

    rows = [[_e(cell) for cell in row] for row in eval_cells(result)]
    note = (
        f'<p class="note">{_num(result.rows)} held-out rows of {_e(result.eval_data)}; '
        f"answers generated (greedy) for {_num(result.generated_rows)}. "
        f"{_e(EVAL_LEGEND)}</p>"
    )
    return note + _table([c.header for c in EVAL_COLUMNS], rows)


def _experiment(data: dict[str, Any]) -> str:
    from jobs.evaluation.result import ExperimentResult
    from jobs.evaluation.table import COLUMNS, LEGEND, cells
    from jobs.report import plots

    try:
        result = ExperimentResult.from_dict(data)
    except (
        TypeError,
        ValueError,
    ) as exc:  # a field missing or malformed: not written by `finesift experiment`
        raise InputError(
            f"experiment.json cannot be read ({exc}); rerun `finesift experiment`"
        ) from exc
    verdict = f'<p class="verdict">{_e(result.verdict)}</p>' if result.verdict else ""
    note = f'<p class="note">{_e(result.note)}</p>'
    rows = [[_e(cell) for cell in row] for row in cells(result)]
    return (
        verdict
        + note
        + _img(plots.experiment_bars([asdict(a) for a in result.arms]), "experiment")
        + _table([c.header for c in COLUMNS], rows)
        + f'<p class="note">{_e(LEGEND)}</p>'
    )


NAV = {
    "overview": "overview",
    "counts": "counts",
    "quality": "quality",
    "review": "review",
    "map": "map",
    "dropped": "dropped rows",
    "training": "training",
    "eval": "evaluation",
    "experiment": "experiment",
}
PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       color: #1d2733; background: #f6f7f9; }}
header {{ background: #1d3557; color: #fff; padding: 18px 32px; }}
header h1 {{ margin: 0; font-size: 22px; }}
nav a {{ color: #cfe3ff; margin-right: 14px; text-decoration: none; }}
main {{ padding: 8px 32px 40px; max-width: 1200px; }}
section {{ background: #fff; border: 1px solid #dde2e8; border-radius: 6px;
          margin: 18px 0; padding: 6px 20px 16px; }}
h2 {{ font-size: 18px; border-bottom: 1px solid #eef0f3; padding-bottom: 6px; }}
img {{ max-width: 100%; display: block; margin: 8px 0; }}
table {{ border-collapse: collapse; margin: 8px 0; width: 100%; }}
th, td {{ border: 1px solid #e3e7ec; padding: 4px 8px; text-align: left;
          vertical-align: top; }}
th {{ background: #f0f3f7; }}
table.kv {{ width: auto; }}
table.rows td {{ width: 50%; }}
details {{ margin: 6px 0; }}
summary {{ cursor: pointer; padding: 4px 0; }}
.note {{ color: #5c6b7a; }}
.meta {{ font-size: 12px; color: #5c6b7a; }}
.p {{ white-space: pre-wrap; font-weight: 600; margin-top: 2px; }}
.r {{ white-space: pre-wrap; margin-top: 4px; }}
.d {{ font-size: 12px; color: #a23b2a; margin-top: 4px; }}
.verdict {{ font-weight: 600; }}
code {{ background: #f0f3f7; padding: 0 3px; border-radius: 3px; }}
</style></head>
<body>
<header><h1>{title}</h1>
<nav>{nav}</nav></header>
<main>
{body}
</main></body></html>
"""
