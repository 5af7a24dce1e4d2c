"""A local mirror of an adapter store, for finesift's backend with a URI ``adapters_dir``.

Every node keeps one cache folder per store (``$FINESIFT_HOME/adapter-cache/<hash>``). An
adapter is downloaded into it when it is first listed or asked for, and again when its
files change in the store (size or modification time). Only its config, its safetensors
weights and its manifest are fetched, never pickle weights; the checks of
:mod:`serving.adapters` (names, links, safetensors header, LoRA config) then run on the
local copy exactly as on a local adapters directory. A copy is assembled beside the
cache entry and swapped in by rename, so a reader never sees half an adapter.

The store is listed at most every :data:`REFRESH_S` seconds; a name missing from the last
listing lists it again, at most every :data:`MISS_REFRESH_S` (so an adapter pushed a
moment ago is found at once, and a client asking for names that do not exist cannot make
every request a round trip to the store). When a listing fails, the last one is kept.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import math
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.adapter_store import StoredAdapters, StoredFile, download_files, stored_adapters
from infra.adapters import CONFIG_FILE, MANIFEST_FILE, WEIGHTS_FILE, valid_name
from infra.errors import InputError
from infra.storage import published_dir

log = logging.getLogger("ray.serve")

MIRRORED_FILES = (CONFIG_FILE, WEIGHTS_FILE, MANIFEST_FILE)
"""What a mirror fetches of an adapter: what serving reads, and nothing that can run code."""
STAMP_FILE = ".finesift-mirror.json"
"""Written into each mirrored adapter: the store's sizes and times of the files fetched."""
REFRESH_S = 10.0
"""A listing of the store is reused for this long (new adapters appear within it)."""
MISS_REFRESH_S = 1.0
"""A name the last listing lacks lists the store again, at most this often."""


class AdapterMirror:
    """One store (``root``) mirrored into one local folder (``cache_dir``).

    Safe to share between threads; several processes on a node may share ``cache_dir``
    (a lock file per adapter serializes their downloads).

    Args:
        root: the store's URI (``s3://bucket/adapters``, ``file:///shared/adapters``...).
        cache_dir: the local folder the adapters are mirrored into.
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(
        self, root: str, cache_dir: Path, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.root = root
        self.cache_dir = cache_dir
        self._clock = clock
        self._listing: StoredAdapters | None = None
        self._listed_at = -math.inf
        self._lock = threading.Lock()
        cache_dir.mkdir(parents=True, exist_ok=True)

    def listing(self, wanted: str | None = None) -> StoredAdapters:
        """The store's adapters, listed again when the last listing is old or lacks
        ``wanted``.

        Raises:
            InputError: the store cannot be listed and was never listed before.
        """
        with self._lock:
            age = self._clock() - self._listed_at
            missing = wanted is not None and wanted not in (self._listing or {})
            if self._listing is None or age >= REFRESH_S or (missing and age >= MISS_REFRESH_S):
                try:
                    self._listing = stored_adapters(self.root)
                except InputError:
                    if self._listing is None:
                        raise
                    log.warning("listing the adapter store failed; using the last listing")
                self._listed_at = self._clock()
            return self._listing

    def sync(self, name: str) -> None:
        """Make the cached ``name`` the store's current one, or remove it if the store
        has no such adapter.

        Raises:
            OSError: the adapter cannot be fetched, even after listing the store again.
        """
        try:
            self._sync(name, self.listing(wanted=name).get(name))
        except OSError:  # changed in the store since it was listed: list it again, once
            self._forget_listing()
            self._sync(name, self.listing(wanted=name).get(name))

    def sync_all(self) -> None:
        """Mirror every adapter of the store and drop cached ones the store no longer has.

        An adapter that cannot be fetched (deleted since the listing, say) keeps its cached
        copy, if any, and the next call lists the store again; the others are mirrored.
        """
        listing = self.listing()
        for name, files in listing.items():
            try:
                self._sync(name, files)
            except OSError:
                log.warning("adapter %s could not be fetched from the store", name)
                self._forget_listing()
        for child in self.cache_dir.iterdir():
            if child.is_dir() and valid_name(child.name) and child.name not in listing:
                self._sync(child.name, None)

    def _forget_listing(self) -> None:
        with self._lock:
            self._listed_at = -math.inf

    def _sync(self, name: str, files: dict[str, StoredFile] | None) -> None:
        target = self.cache_dir / name
        if files is None:
            if target.exists():
                with self._locked(name):
                    shutil.rmtree(target, ignore_errors=True)
            return
        stamp = {f: [files[f].size, files[f].mtime_ns] for f in MIRRORED_FILES if f in files}
        if _stamp_of(target) == stamp:
            return
        with self._locked(name):
            if _stamp_of(target) == stamp:  # another process fetched it meanwhile
                return
            with published_dir(target) as tmp:
                download_files(self.root, name, sorted(stamp), tmp)
                (tmp / STAMP_FILE).write_text(json.dumps(stamp), encoding="utf-8")
        log.info("mirrored adapter %s from the adapter store", name)

    @contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        """An exclusive lock on one adapter of the cache, across processes."""
        with open(self.cache_dir / f".{name}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _stamp_of(adapter_dir: Path) -> dict[str, list[int | None]] | None:
    """The stamp a mirrored adapter was fetched with, or None (absent or unreadable)."""
    try:
        return json.loads((adapter_dir / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


_MIRRORS: dict[str, AdapterMirror] = {}
_MIRRORS_LOCK = threading.Lock()


def mirror_for(root: str) -> AdapterMirror:
    """This process's mirror of the store ``root`` (one per store, created on first use)."""
    with _MIRRORS_LOCK:
        if root not in _MIRRORS:
            from infra.models import finesift_home

            key = hashlib.sha256(root.encode("utf-8")).hexdigest()[:16]
            _MIRRORS[root] = AdapterMirror(root, finesift_home() / "adapter-cache" / key)
        return _MIRRORS[root]
