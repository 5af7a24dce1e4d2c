"""finesift report: sections, dropped rows beside their kept rows, a headless-Chromium render."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from infra.errors import InputError
from jobs.report.data import ROWS_PER_REASON, write_report
from quality.schema import LEDGER_SCHEMA

SECTIONS = ["overview", "counts", "quality", "map", "dropped", "training", "eval", "experiment"]


def ledger_row(i: int, status: str, reason: str | None, **extra) -> dict:
    row = {
        "id": f"r{i}",
        "source": f"noisy.jsonl:{i + 1}",
        "status": status,
        "reason": reason,
        "detail": None,
        "duplicate_of": None,
        "kept_instead": None,
        "quality": 0.5 + (i % 50) / 100,
        "failed_rules": [],
        "cluster": i % 4,
        "timestamp": None,
        "prompt": f"Question number {i}?",
        "response": f"Answer {i}.",
        "extras": "{}",
    }
    return row | extra


def planted_rows(n_not_selected: int = 60) -> list[dict]:
    rows = [ledger_row(i, "selected", None) for i in range(10)]
    rows.append(
        ledger_row(
            10,
            "dropped",
            "near_duplicate",
            duplicate_of="r3",
            prompt="Question number 3 ??",
            response="PLANTED near-duplicate of 3",
        )
    )
    rows.append(
        ledger_row(
            11, "dropped", "conflict", kept_instead="r4", response="PLANTED conflicting answer"
        )
    )
    rows.append(
        ledger_row(
            12,
            "quarantined",
            "invalid_json",
            quality=None,
            prompt="",
            response="",
            detail="Expecting ',' delimiter: line 1 column 9",
        )
    )
    rows.append(ledger_row(13, "dropped", "exact_duplicate", duplicate_of="gone"))
    rows += [
        ledger_row(100 + i, "dropped", "not_selected", quality=0.2) for i in range(n_not_selected)
    ]
    return rows


def write_run(run_dir: Path, rows: list[dict], *, with_map: bool = True) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA), run_dir / "ledger.parquet")
    counts: dict[tuple[str, str], int] = {}
    for r in rows:
        counts[(r["status"], r["reason"] or "")] = (
            counts.get((r["status"], r["reason"] or ""), 0) + 1
        )
    summary = {
        "input_rows": len(rows),
        "by_status": {
            s: sum(1 for r in rows if r["status"] == s)
            for s in ("selected", "dropped", "quarantined")
        },
        "by_reason": [
            {"status": s, "reason": r, "rows": n}
            for (s, r), n in sorted(counts.items(), key=lambda kv: -kv[1])
        ],
        "coverage": {"selected": 0.31, "random": 0.42, "picks": 10, "survivors": 70},
        "seconds": {"read": 1.0, "embed": 2.5},
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    if with_map:
        rng = np.random.default_rng(0)
        mapped = [r for r in rows if r["status"] != "quarantined"]
        pq.write_table(
            pa.table(
                {
                    "id": [r["id"] for r in mapped],
                    "x": rng.normal(size=len(mapped)),
                    "y": rng.normal(size=len(mapped)),
                    "cluster": [r["cluster"] for r in mapped],
                    "status": [r["status"] for r in mapped],
                }
            ),
            run_dir / "map.parquet",
        )
    return run_dir


def add_training_and_eval(run_dir: Path) -> None:
    adapter = run_dir / "adapters" / "curated"
    adapter.mkdir(parents=True)
    (adapter / "finesift.json").write_text(
        json.dumps(
            {
                "name": "curated",
                "base_model": "default",
                "train_rows": 10,
                "steps": 6,
                "tokens_seen": 1234,
                "runtime_s": 12.5,
                "base_eval_loss": 2.1,
                "final_eval_loss": 1.7,
                "data": {"path": "selected.jsonl"},
                "train_loss_history": [{"step": s, "loss": 2.5 - 0.1 * s} for s in range(1, 7)],
                "eval_loss_history": [{"step": 0, "eval_loss": 2.1}, {"step": 6, "eval_loss": 1.7}],
            }
        )
    )
    models = [
        {
            "name": n,
            "base_model": "default",
            "adapter": None,
            "nll": v,
            "perplexity": float(np.exp(v)),
            "rouge_l": 0.2,
            "chrf": 25.0,
            "corpus_chrf": 21.5,
            "length_ratio": 0.7,
            "tokens": 900,
            "rows": 20,
            "generated": 10,
            "seconds": 3.0,
        }
        for n, v in (("base", 2.1), ("curated", 1.7))
    ]
    (run_dir / "eval.json").write_text(
        json.dumps(
            {
                "format": 2,
                "eval_data": "heldout.jsonl",
                "rows": 20,
                "generated_rows": 10,
                "models": models,
            }
        )
    )
    runs = [
        {
            "seed": seed,
            "model": f"curated-seed{seed}",
            "nll": 1.7,
            "perplexity": 5.5,
            "rouge_l": 0.2,
            "chrf": chrf,
            "corpus_chrf": chrf - 3.0,
            "rows": 10,
            "steps": 6,
            "tokens_seen": 1234,
            "train_seconds": 12.5,
        }
        for seed, chrf in ((0, 24.0), (1, 26.0))
    ]
    (run_dir / "experiment.json").write_text(
        json.dumps(
            {
                "format": 2,
                "data": "noisy.jsonl",
                "eval_data": "heldout.jsonl",
                "budget": 10,
                "schedule": "equal epochs (1 per arm)",
                "note": "equal epochs",
                "verdict": "curated beats random on chrF: 25.00 vs 21.00 (+4.00)",
                "seeds": [0, 1],
                "arms": [
                    {
                        "arm": "base",
                        "nll": 2.1,
                        "perplexity": 8.2,
                        "rouge_l": 0.1,
                        "chrf": 20.0,
                        "corpus_chrf": 23.0,
                        "length_ratio": 1.13,
                    },
                    {
                        "arm": "curated",
                        "rows": 10,
                        "steps": 6,
                        "tokens_seen": 1234,
                        "train_seconds": 12.5,
                        "train_seconds_total": 25.0,
                        "nll": 1.7,
                        "perplexity": 5.5,
                        "rouge_l": 0.2,
                        "chrf": 25.0,
                        "chrf_min": 24.0,
                        "chrf_max": 26.0,
                        "corpus_chrf": 22.0,
                        "corpus_chrf_min": 21.0,
                        "corpus_chrf_max": 23.0,
                        "length_ratio": 0.7,
                        "runs": runs,
                    },
                ],
            }
        )
    )


def section_ids(page: str) -> list[str]:
    return re.findall(r'<section id="([a-z]+)">', page)


def test_report_has_every_section_and_no_external_reference(tmp_path):
    run = write_run(tmp_path / "run", planted_rows())
    add_training_and_eval(run)
    page = write_report(run).read_text()
    assert section_ids(page) == SECTIONS
    assert page.count("data:image/png;base64,") == 5  # bars, histograms, map, curves, experiment
    experiment = re.search(r'<section id="experiment">.*?</section>', page, re.S).group(0)
    from jobs.evaluation.table import COLUMNS

    headers = re.findall(r"<th>(.*?)</th>", experiment)
    assert headers == [c.header for c in COLUMNS]  # the CLI's columns, defined once
    assert "25.00 (24.00-26.00)" in experiment and "curated beats random on chrF" in experiment
    assert "22.00 (21.00-23.00)" in experiment and "0.70x" in experiment  # corpus, length
    evaluation = re.search(r'<section id="eval">.*?</section>', page, re.S).group(0)
    headers = re.findall(r"<th>(.*?)</th>", evaluation)
    assert headers[:5] == ["model", "chrF", "corpus chrF", "ROUGE-L", "answer length"]
    assert "<td>25.00</td><td>21.50</td><td>0.2000</td><td>0.70x</td>" in evaluation
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script" not in page


def test_a_run_from_before_corpus_chrf_shows_its_figure_as_corpus_chrf(tmp_path):
    """Older eval.json and experiment.json held corpus chrF under ``chrf``."""
    run = write_run(tmp_path / "run", planted_rows())
    add_training_and_eval(run)
    for name in ("eval.json", "experiment.json"):
        text = (run / name).read_text()
        text = re.sub(r'"corpus_chrf(_min|_max)?": [0-9.]+, |"format": 2, ', "", text)
        (run / name).write_text(text)
        assert "corpus_chrf" not in text and '"format"' not in text
    page = write_report(run).read_text()
    evaluation = re.search(r'<section id="eval">.*?</section>', page, re.S).group(0)
    assert "<td>base</td><td>-</td><td>25.00</td>" in evaluation
    experiment = re.search(r'<section id="experiment">.*?</section>', page, re.S).group(0)
    assert "<td>-</td><td>25.00 (24.00-26.00)</td>" in experiment
    from dataclasses import asdict

    from jobs.evaluation.result import ExperimentResult
    from jobs.report.plots import bar_figure

    data = json.loads((run / "experiment.json").read_text())
    arms = [asdict(a) for a in ExperimentResult.from_dict(data).arms]
    assert bar_figure(arms) == ("corpus_chrf", "corpus chrF")  # the figure the file has
    assert [a["corpus_chrf"] for a in arms] == [20.0, 25.0]
    assert bar_figure([{"chrf": 25.0}, {"chrf": None}]) == ("chrf", "chrF per answer, mean")


def test_dropped_rows_sit_beside_the_row_they_lost_to(tmp_path):
    page = write_report(write_run(tmp_path / "run", planted_rows())).read_text()
    dup = re.search(r"PLANTED near-duplicate of 3</div>.*?</tr>", page, re.S)
    assert dup and "<b>r3</b>" in dup.group(0) and "Answer 3." in dup.group(0)
    conflict = re.search(r"PLANTED conflicting answer</div>.*?</tr>", page, re.S)
    assert conflict and "<b>r4</b>" in conflict.group(0)
    # A partner id missing from the ledger is named, not dropped silently.
    assert "gone (not in the ledger)" in page
    # Quarantined rows show their detail; the HTML in it is escaped.
    assert "Expecting &#x27;,&#x27; delimiter" in page


def test_rows_per_reason_are_capped_and_say_so(tmp_path):
    page = write_report(write_run(tmp_path / "run", planted_rows(n_not_selected=80))).read_text()
    block = re.search(
        r"<details><summary><code>dropped: not_selected</code>.*?</details>", page, re.S
    ).group(0)
    assert f"80 rows, first {ROWS_PER_REASON} shown" in block
    assert block.count("<tr>") == ROWS_PER_REASON + 1  # + the header row


def test_missing_parts_are_skipped_or_explained(tmp_path):
    page = write_report(write_run(tmp_path / "run", planted_rows(), with_map=False)).read_text()
    assert section_ids(page) == ["overview", "counts", "quality", "map", "dropped"]
    assert "No map.parquet in this run" in page
    assert 'href="#dropped"' in page and 'href="#training"' not in page  # no dead links


def test_a_ledger_with_nothing_dropped_still_renders(tmp_path):
    rows = [ledger_row(i, "selected", None) for i in range(5)]
    page = write_report(write_run(tmp_path / "run", rows)).read_text()
    assert "dropped" in section_ids(page) and "<details>" not in page


def test_bad_run_directories_are_named(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        write_report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no finesift outputs"):
        write_report(tmp_path / "empty")


def test_an_eval_json_missing_a_field_gets_a_one_line_error(tmp_path):
    run = write_run(tmp_path / "run", planted_rows())
    add_training_and_eval(run)
    evaluated = json.loads((run / "eval.json").read_text())
    del evaluated["models"][0]["base_model"]
    (run / "eval.json").write_text(json.dumps(evaluated))
    with pytest.raises(InputError, match="eval.json cannot be read .*base_model.*rerun") as err:
        write_report(run)
    assert "\n" not in str(err.value)
    evaluated["format"] = "two"
    evaluated["models"][0]["base_model"] = "default"
    (run / "eval.json").write_text(json.dumps(evaluated))
    with pytest.raises(InputError, match="eval.json cannot be read .*format must be a whole"):
        write_report(run)


def test_report_renders_in_headless_chromium(tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed: apt-get update && apt-get install -y chromium")
    from PIL import Image

    run = write_run(tmp_path / "run", planted_rows())
    add_training_and_eval(run)
    report = write_report(run)
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,2000",
    ]
    shot = tmp_path / "report.png"
    subprocess.run(
        [*flags, f"--screenshot={shot}", report.resolve().as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (2000, 1280)
    assert pixels.std() > 20  # a blank or single-colour page has (almost) no variance
    dom = subprocess.run(
        [*flags, "--dump-dom", report.resolve().as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert section_ids(dom) == SECTIONS
    assert dom.count('src="data:image/png;base64,') == 5


def test_report_of_a_run_on_cloud_storage_is_uploaded_beside_it(tmp_path):
    run = write_run(tmp_path / "cloudrun", planted_rows())
    uri = f"file://{run}"
    page_uri = write_report(uri)
    assert page_uri == f"{uri}/report.html"
    page = (run / "report.html").read_text()
    assert section_ids(page) == ["overview", "counts", "quality", "map", "dropped"]
    assert uri in page  # the overview names the run by its URI, not the temporary copy
    assert "finesift report: cloudrun" in page
    assert "PLANTED near-duplicate of 3" in page
    with pytest.raises(InputError, match=r"file://.*nope does not exist"):
        write_report(f"file://{tmp_path}/nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"file://.*empty holds no finesift outputs"):
        write_report(f"file://{tmp_path}/empty")
