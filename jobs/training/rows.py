"""The driver's checks of the rows before training: read, audit, split, overlap, length.

Runs once on the driver, before Ray starts: everything a user can fix in their data is
said here, in plain words, rather than discovered by the workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.errors import FinesiftError
from jobs.training.config import TrainConfig
from quality.audit import AuditResult


@dataclass(frozen=True)
class PreparedRows:
    """Rows ready for the workers, and what preparing them found."""

    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    data_sha256: str
    data_rows: int
    notes: tuple[str, ...]
    audit: AuditResult | None = None
    """The data audit, for data that did not come from ``finesift curate``; else None."""


def prepare_rows(cfg: TrainConfig, model_path: str) -> PreparedRows:
    """Read, validate, audit, split and length-check the training (and eval) rows.

    Args:
        cfg: the config (data, eval_data, eval, text, seed).
        model_path: the resolved base model, whose tokenizer and chat template are used.

    Raises:
        InputError: on a missing/empty data file or one without usable rows.
        FinesiftError: when the base model has no chat template or every row is too long.
    """
    from transformers import AutoTokenizer

    from jobs.training.data import (
        EMPTY_ANSWER,
        apply_length_policy,
        file_sha256,
        load_examples,
        split_heldout,
    )

    assert cfg.data is not None
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if not getattr(tokenizer, "chat_template", None):
        raise FinesiftError(
            f"base model {cfg.base_model} has no chat template; use a chat/instruct model "
            "(e.g. the default SmolLM2-135M-Instruct)"
        )
    examples, report = load_examples(cfg.data)
    notes = [w for w in [report.warning()] if w]
    audit = None
    if not report.from_curate:
        audit = audit_examples(examples, empty_skipped=report.skipped[EMPTY_ANSWER])
    if cfg.eval_data:
        eval_rows, eval_report = load_examples(cfg.eval_data)
        notes += [w for w in [eval_report.warning()] if w]
        notes += [w for w in [overlap_warning(examples, eval_rows, cfg.eval_data)] if w]
        train_rows = examples
    else:
        train_rows, eval_rows = split_heldout(
            examples, cfg.eval.fraction, cfg.eval.max_rows, cfg.seed
        )
    policy = (tokenizer, cfg.text.max_length, cfg.text.too_long, cfg.text.train_on)
    try:
        train_rows, lengths = apply_length_policy(train_rows, *policy)
        eval_rows, eval_lengths = apply_length_policy(eval_rows, *policy)
    except ValueError as exc:  # a tokenizer that cannot say where the answers are
        raise FinesiftError(f"base model {cfg.base_model}: {exc}") from exc
    for split, rep in (("training", lengths), ("eval", eval_lengths)):
        notes += length_notes(split, rep, cfg)
    if not train_rows:
        raise FinesiftError(
            f"no training rows fit text.max_length={cfg.text.max_length}; "
            "raise it (e.g. text.max_length=1024) or use shorter rows"
        )
    return PreparedRows(
        train=train_rows,
        eval=eval_rows,
        data_sha256=file_sha256(cfg.data),
        data_rows=report.rows,
        notes=tuple(notes),
        audit=audit,
    )


def length_notes(split: str, rep: Any, cfg: TrainConfig) -> list[str]:
    """Warnings about rows over text.max_length and turns the loss cannot cover."""
    notes = []
    if rep.too_long:
        done = "skipped" if cfg.text.too_long == "skip" else "truncated to keep their start"
        notes.append(
            f"{rep.too_long} {split} rows are longer than text.max_length="
            f"{cfg.text.max_length} tokens (longest {rep.longest}): {done}"
            + (
                f"; {rep.prompt_fills} whose prompt alone fills max_length are skipped"
                if rep.prompt_fills and cfg.text.too_long != "skip"
                else ""
            )
            + ". Raise text.max_length to keep them whole"
        )
    if rep.unaligned_turns:
        notes.append(
            f"{rep.unaligned_turns} assistant turns of {split} rows are not learned: the chat "
            "template renders their history differently once the conversation goes on"
            + (
                f" ({rep.nothing_to_learn} rows had no turn left and are skipped)"
                if rep.nothing_to_learn
                else ""
            )
        )
    return notes


def audit_examples(examples: list[dict[str, Any]], empty_skipped: int = 0) -> AuditResult:
    """The model-free audit of uncurated rows (:mod:`quality.audit`).

    Args:
        examples: the rows as loaded.
        empty_skipped: rows the loader already skipped for an empty final answer; they count
            as empty answers too.
    """
    from dataclasses import replace

    from jobs.training.data import messages_of
    from quality.audit import audit_rows

    result = audit_rows([e["id"] for e in examples], [messages_of(e) for e in examples])
    return replace(
        result,
        rows=result.rows + empty_skipped,
        empty_answers=result.empty_answers + empty_skipped,
    )


def overlap_warning(
    train: list[dict[str, Any]], held_out: list[dict[str, Any]], eval_path: str
) -> str | None:
    """A warning when --eval-data rows also appear in --data (identical, or same instruction)."""
    from jobs.training.data import messages_of
    from quality.audit import prompt_response
    from quality.decontaminate import overlap_counts

    same, same_instruction = overlap_counts(
        [prompt_response(messages_of(e)) for e in train],
        [prompt_response(messages_of(e)) for e in held_out],
    )
    if not same and not same_instruction:
        return None
    return (
        f"{same + same_instruction} of {len(held_out)} --eval-data rows also appear in --data "
        f"({same} identical, {same_instruction} with the same instruction): the held-out loss "
        "then partly measures memory. Curate with filters.decontaminate="
        f"{eval_path} to drop them from the training rows"
    )
