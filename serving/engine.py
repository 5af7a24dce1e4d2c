"""One base model in memory, LoRA adapters attached to it by name, batched generation.

Why one PeftModel with named adapters and ``set_adapter`` (not a model per adapter, not
merged weights): adapters cost only their LoRA matrices, switching is a flag flip, and
the base weights are never modified, so the base model stays exact. The active adapter
is model-wide state, so a batch must use one adapter (Ray Serve splits batches by
multiplexed model id). A batch is a :class:`Decoding` that its caller advances a step at
a time (rows join and leave between steps, see ``serving.decoding``); every change of
adapter state and every step runs under one lock, and an adapter is never detached while
an open batch uses it. On CPU the lock costs nothing, one step already uses every thread
the replica has.

Adapters load only from ``adapter_model.safetensors`` through ``safetensors``; peft's
own loader is not used because it falls back to pickle files. No ``trust_remote_code``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from serving.adapters import CONFIG_FILE, WEIGHTS_FILE
from serving.decoding import DecodingBatch
from serving.sampling import GenParams, RowResult, RowState

log = logging.getLogger(__name__)


class AdapterLoadError(RuntimeError):
    """An adapter directory that does not fit the base model (wrong shapes, bad file)."""


def pick_device(num_gpus: float) -> str:
    """``cuda`` when GPUs were reserved and one is visible, else ``cpu``."""
    return "cuda" if num_gpus > 0 and torch.cuda.is_available() else "cpu"


def pick_dtype(dtype: str, device: str) -> torch.dtype:
    """The torch dtype for a config value; ``auto`` is float32 on CPU, bfloat16 on GPU."""
    if dtype == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


_UNKNOWN = object()  # the active adapter after peft changed it


class GenerationEngine:
    """A causal LM with switchable LoRA adapters that decodes batches rows can join.

    Args:
        model_dir: a local transformers model directory (config, safetensors, tokenizer).
        dtype: ``auto``, ``float32``, ``bfloat16`` or ``float16``.
        device: ``cpu`` or ``cuda``.
    """

    def __init__(self, model_dir: str | Path, dtype: str = "auto", device: str = "cpu") -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = device
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), trust_remote_code=False)
        self.lm = AutoModelForCausalLM.from_pretrained(
            str(model_dir), dtype=pick_dtype(dtype, device), trust_remote_code=False
        ).to(device)
        self.lm.eval()
        self.eos_ids = _eos_ids(self.lm, self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else self.eos_ids[0]
        self.context_length = context_length(self.lm.config)
        self._peft: Any = None  # a PeftModel wrapping self.lm once an adapter is attached
        self._attached: dict[str, Path] = {}
        self._lock = threading.Lock()  # model state and decoding steps
        self._selected: object = _UNKNOWN  # adapter name the model runs now (None: base)
        self._in_use: Counter[str] = Counter()  # adapters of open batches: never detached
        self._retired: set[str] = set()  # adapters to detach at the next safe moment
        self._retired_lock = threading.Lock()

    @property
    def attached(self) -> list[str]:
        """Names of the adapters currently attached."""
        return sorted(self._attached)

    def attach(self, name: str, path: str | Path) -> None:
        """Attach the LoRA adapter in ``path`` as ``name`` (no-op when already attached).

        Raises:
            AdapterLoadError: when the files are unreadable or do not fit the base model.
        """
        with self._retired_lock:
            self._retired.discard(name)
        with self._lock:
            self._sweep(keep=name)
            if name not in self._attached:
                self._attach(name, Path(path))

    def retire(self, name: str) -> None:
        """Mark an adapter for detaching; it is detached when no batch is using it.

        Safe to call from any thread without waiting for a running batch.
        """
        with self._retired_lock:
            self._retired.add(name)

    def open(self, adapter: tuple[str, str | Path] | None = None) -> Decoding:
        """Start an empty batch for one adapter (or the base model) that rows can join.

        Args:
            adapter: (name, path) of the adapter, None for the base model. It is attached
                again if it was detached since it was loaded, and stays attached until
                the batch is closed.

        Raises:
            AdapterLoadError: when the adapter cannot be attached.
        """
        name = adapter[0] if adapter else None
        with self._lock:
            self._sweep(keep=name)
            if adapter is not None and adapter[0] not in self._attached:
                self._attach(adapter[0], Path(adapter[1]))
            if name is not None:
                self._in_use[name] += 1
        return Decoding(self, name)

    def row(self, params: GenParams) -> RowState:
        """A new row for ``params``, to pass to :meth:`Decoding.advance`."""
        return RowState(params, self._decode, self.eos_ids)

    def generate(
        self,
        params: Sequence[GenParams],
        adapter: tuple[str, str | Path] | None = None,
        on_step: Callable[[list[RowState]], None] | None = None,
    ) -> list[RowResult]:
        """Generate answers for a batch of requests that share one adapter (or none).

        Args:
            params: the batch's requests.
            adapter: (name, path) of the adapter to use, None for the base model.
            on_step: called after every decoding step with the row states (streaming).

        Returns:
            One result per request, in order.
        """
        decoding = self.open(adapter)
        try:
            rows = [self.row(p) for p in params]
            joining = rows
            while joining or decoding.rows:
                decoding.advance(joining)
                joining = []
                if on_step is not None:
                    on_step(rows)
        finally:
            decoding.close()
        return [r.result() for r in rows]

    def _advance(self, decoding: Decoding, joining: Sequence[RowState]) -> list[RowState]:
        """Prefill ``joining`` into the batch, then decode one step; under the lock."""
        with self._lock, torch.inference_mode():
            self._select(decoding.adapter)
            finished = decoding.batch.join(joining)
            return finished + decoding.batch.step()

    def _close(self, decoding: Decoding) -> None:
        with self._lock:
            if decoding.adapter is not None:
                self._in_use[decoding.adapter] -= 1
                if self._in_use[decoding.adapter] <= 0:
                    del self._in_use[decoding.adapter]

    def _decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    def _select(self, name: str | None) -> None:
        """Make ``name`` the active adapter, or run the bare base model for None."""
        if self._peft is None or self._selected == name:
            return
        tuner = self._peft.base_model
        if name is None:
            tuner.disable_adapter_layers()
        else:
            tuner.enable_adapter_layers()
            tuner.set_adapter(internal_name(name), inference_mode=True)
        self._selected = name

    def _attach(self, name: str, path: Path) -> None:
        """Inject the adapter's LoRA layers and load its safetensors weights into them."""
        from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
        from safetensors.torch import load_file

        try:
            if not (path / CONFIG_FILE).is_file():  # never let peft look on the Hub
                raise FileNotFoundError(f"{CONFIG_FILE} is missing")
            config = LoraConfig.from_pretrained(str(path))
            if not isinstance(config, LoraConfig):
                raise ValueError(f"peft_type is {config.peft_type}, only LoRA is served")
            weights = load_file(str(path / WEIGHTS_FILE), device=self.device)
        except Exception as exc:  # a corrupt file is the adapter's problem, not the server's
            raise AdapterLoadError(f"adapter {name!r} cannot be read: {exc}") from exc
        config.inference_mode = True
        self._selected = _UNKNOWN  # adding an adapter may change the active one
        try:
            if self._peft is None:
                self._peft = get_peft_model(self.lm, config, adapter_name=internal_name(name))
            else:
                self._peft.add_adapter(internal_name(name), config)
            result = set_peft_model_state_dict(
                self._peft, weights, adapter_name=internal_name(name)
            )
        except Exception as exc:
            self._drop_partial(name)
            raise AdapterLoadError(f"adapter {name!r} does not fit the base model: {exc}") from exc
        missing = [k for k in result.missing_keys if f".{internal_name(name)}." in k]
        if result.unexpected_keys or missing:
            self._drop_partial(name)
            keys = (list(result.unexpected_keys) + missing)[:3]
            raise AdapterLoadError(f"adapter {name!r} does not fit the base model (keys {keys})")
        self._peft.to(self.device)
        self._peft.eval()
        self._attached[name] = path
        log.info("attached adapter %s from %s", name, path)

    def _drop_partial(self, name: str) -> None:
        """Remove a half-attached adapter so a failed load leaves the model as it was."""
        if self._peft is not None and internal_name(name) in self._peft.peft_config:
            self._selected = _UNKNOWN
            self._peft.delete_adapter(internal_name(name))
        self._attached.pop(name, None)

    def _sweep(self, keep: str | None) -> None:
        """Detach retired adapters except ``keep`` and those of open batches; the caller
        holds the lock."""
        with self._retired_lock:
            gone = [n for n in self._retired if n != keep and n not in self._in_use]
            self._retired.difference_update(gone)
        for name in gone:
            if name in self._attached:
                self._selected = _UNKNOWN
                with warnings.catch_warnings():  # "active adapter deleted": we select per step
                    warnings.simplefilter("ignore", UserWarning)
                    self._peft.delete_adapter(internal_name(name))
                del self._attached[name]
                log.info("detached adapter %s", name)


def internal_name(name: str) -> str:
    """The name an adapter gets inside peft: module keys cannot hold '.', and a name that is
    a substring of peft's ``lora_`` prefix (``a``, ``or``) confuses its weight loading."""
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"fs_{re.sub(r'[^A-Za-z0-9_]', '_', name)}_{digest}"


def context_length(config: Any) -> int:
    """The model's context window from its config (2048 when it does not say)."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048


def _eos_ids(lm: Any, tokenizer: Any) -> tuple[int, ...]:
    """Token ids that end an answer: the generation config's EOS ids and the tokenizer's."""
    ids: list[int] = []
    configured = getattr(lm.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.append(configured)
    elif configured:
        ids.extend(configured)
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    if not ids:
        raise ValueError("the model defines no EOS token; set eos_token_id in its config")
    return tuple(dict.fromkeys(ids))


class Decoding:
    """A batch on one adapter that its caller advances a step at a time.

    Rows join between steps and leave as soon as they finish; close it when it is empty
    (or on failure) so its adapter may be detached. One caller drives it at a time.
    """

    def __init__(self, engine: GenerationEngine, adapter: str | None) -> None:
        self.engine = engine
        self.adapter = adapter
        self.batch = DecodingBatch(engine.lm, engine.pad_id, engine.device)
        self._closed = False

    @property
    def rows(self) -> list[RowState]:
        """The live rows."""
        return self.batch.rows

    @property
    def can_join(self) -> bool:
        """Whether rows may join now (always for plain attention models; see DecodingBatch)."""
        return self.batch.can_join

    def advance(self, joining: Sequence[RowState] = ()) -> list[RowState]:
        """Prefill ``joining`` into the batch (each gets its first token), then decode one
        token for every row.

        Returns:
            The rows that finished, already removed from the batch.
        """
        return self.engine._advance(self, joining)

    def close(self) -> None:
        """Release the batch's adapter (idempotent)."""
        if not self._closed:
            self._closed = True
            self.engine._close(self)
