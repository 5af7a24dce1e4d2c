"""ifd: a causal LM scores instruction-following difficulty (IFD) and response
perplexity per row, in an actor pool (GPUs when ``signals.ifd_num_gpus`` > 0), through a
score cache keyed by content and model; optionally drops misaligned or disfluent rows."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import pyarrow as pa

from jobs.curation.stage import Resources, Stage, Verdicts

if TYPE_CHECKING:
    from jobs.curation.config import CurateConfig


def build(cfg: CurateConfig) -> Stage:
    """Raises ModelNotFoundError now, on the driver, when signals.ifd_model is missing."""
    s = cfg.signals
    if s.ifd:
        from infra.models import resolve_base_model

        resolve_base_model(s.ifd_model)
    return Stage(
        name="ifd",
        process=IFDScorer,
        enabled=s.ifd,
        batch_size=max(64, 8 * s.ifd_batch_size),
        resources=Resources(cpus=s.ifd_num_cpus, gpus=s.ifd_num_gpus, actors=s.ifd_num_actors),
        kwargs=dict(
            model=s.ifd_model,
            device="cuda" if s.ifd_num_gpus > 0 else "cpu",
            max_length=s.ifd_max_length,
            batch_size=s.ifd_batch_size,
            cache_path=s.cache,
            max_ifd=s.max_ifd,
            max_perplexity=s.max_perplexity,
        ),
    )


class IFDScorer:
    """Ray Data actor: a causal LM scores IFD and perplexity per batch, through the cache.

    Args:
        model: ``signals.ifd_model`` ("default" is the bundled base model).
        device: "cpu" or "cuda".
        max_length: Tokens per scored sequence.
        batch_size: Sequences per forward pass.
        cache_path: SQLite score cache; None uses the default under $FINESIFT_HOME.
        max_ifd: Drop rows with IFD >= this as misaligned (0: none).
        max_perplexity: Drop rows above this perplexity as high_perplexity (0: none).
        threads: torch CPU threads; None uses what Ray reserved for the actor (0: leave
            torch's default).
    """

    def __init__(
        self,
        model: str,
        device: str,
        max_length: int,
        batch_size: int,
        cache_path: str | None,
        max_ifd: float = 0.0,
        max_perplexity: float = 0.0,
        threads: int | None = None,
    ) -> None:
        from infra.models import resolve_base_model
        from infra.ray_env import assigned_cpus
        from quality.ifd import load_causal_lm
        from quality.score_cache import ScoreCache, default_cache_path

        threads = assigned_cpus() if threads is None else threads
        if device == "cpu" and threads > 0:
            os.environ["OMP_NUM_THREADS"] = str(threads)
        path = resolve_base_model(model)
        self.model, self.tokenizer = load_causal_lm(path, device=device, threads=threads)
        self.model_key = path
        self.signal = f"ifd:max_length={max_length}"
        self.max_length, self.batch_size = max_length, batch_size
        self.max_ifd, self.max_perplexity = max_ifd, max_perplexity
        self.cache = ScoreCache(cache_path or default_cache_path())

    def scores(self, prompts: list[str], responses: list[str]) -> list[dict[str, float]]:
        """{"conditioned", "unconditioned", "tokens"} per row, from the cache when there."""
        from quality.ifd import score_ifd
        from quality.score_cache import score_key

        keys = [
            score_key(self.signal, self.model_key, p, r)
            for p, r in zip(prompts, responses, strict=True)
        ]
        found = self.cache.get_many(keys)
        todo = [i for i, k in enumerate(keys) if k not in found]
        if todo:
            fresh = score_ifd(
                self.model,
                self.tokenizer,
                [prompts[i] for i in todo],
                [responses[i] for i in todo],
                max_length=self.max_length,
                batch_size=self.batch_size,
            )
            new = {
                keys[i]: {
                    "conditioned": s.conditioned,
                    "unconditioned": s.unconditioned,
                    "tokens": s.tokens,
                }
                for i, s in zip(todo, fresh, strict=True)
            }
            self.cache.put_many(new)
            found.update(new)
        return [found[k] for k in keys]

    def __call__(self, batch: pa.Table) -> pa.Table:
        from quality.ifd import IFDScore

        v = Verdicts(batch)
        rows = self.scores(batch["prompt"].to_pylist(), batch["response"].to_pylist())
        scored = [IFDScore(r["conditioned"], r["unconditioned"], int(r["tokens"])) for r in rows]
        ifd = [_or_none(s.ifd) for s in scored]
        ppl = [_or_none(s.perplexity) for s in scored]
        for i in v.undecided():  # a mismatched row keeps its reason
            if self.max_ifd > 0 and ifd[i] is not None and ifd[i] >= self.max_ifd:
                v.drop(i, "misaligned", f"IFD {ifd[i]:.2f} >= signals.max_ifd {self.max_ifd}")
            elif self.max_perplexity > 0 and ppl[i] is not None and ppl[i] > self.max_perplexity:
                v.drop(
                    i,
                    "high_perplexity",
                    f"perplexity {ppl[i]:.0f} > signals.max_perplexity {self.max_perplexity}",
                )
        return v.table(ifd=pa.array(ifd, pa.float64()), perplexity=pa.array(ppl, pa.float64()))


def _or_none(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)
