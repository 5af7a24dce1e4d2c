"""The adapter-directory contract, shared by training (which writes adapters) and serving
(which lists and loads them): one name rule, the file names, the manifest."""

from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""An adapter (or served model) name: letters, digits, '.', '_', '-', at most 128
characters, no leading dot; with no separators it can never be a path."""
NAME_RULE = "letters, digits, '.', '_' or '-', starting with a letter or digit, at most 128"

WEIGHTS_FILE = "adapter_model.safetensors"
"""The only adapter weights file finesift loads."""
CONFIG_FILE = "adapter_config.json"
"""peft's adapter config, plain JSON."""
PICKLE_FILES = ("adapter_model.bin", "adapter_model.pt", "adapter_model.pth")
"""Pickle weights files; never loaded (loading a pickle can run code)."""
MANIFEST_FILE = "finesift.json"
"""What finesift records about how an adapter was trained (base model, data, losses)."""


def valid_name(name: str) -> bool:
    """Whether ``name`` follows the adapter name rule (and holds no ``..``)."""
    return bool(NAME_PATTERN.fullmatch(name)) and ".." not in name
