"""Local paths and cloud URIs (s3://, gs://, file://...) behind one small set of helpers.

A path with a scheme (``s3://bucket/key``) is opened through :mod:`pyarrow.fs`, the same
filesystems Ray Data and Ray Train use, so credentials and regions come from the usual
environment (``AWS_*``, ``GOOGLE_APPLICATION_CREDENTIALS``, instance roles). Schemes
pyarrow does not know fall back to fsspec when it is installed, as Ray Data does. A path
without a scheme is a local path and goes through the builtin ``open`` and
:mod:`pathlib`, exactly as before URIs were supported.

A URI may carry options in its query (``s3://bucket/data?region=eu-west-1``); helpers that
derive a child path (:func:`join`) keep the query.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from infra.errors import InputError

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")  # 2+ letters: "C://" is a drive
_COPY_BLOCK = 1 << 20


def is_uri(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` has a scheme such as ``s3://`` or ``file://``."""
    return bool(_SCHEME.match(str(path)))


def resolve(uri: str) -> tuple[Any, str]:
    """The pyarrow filesystem of a URI and the path inside it.

    Args:
        uri: e.g. ``s3://bucket/key``, ``gs://bucket/key``, ``file:///abs/path``.

    Returns:
        ``(pyarrow.fs.FileSystem, path)``; for ``s3://bucket/key`` the path is ``bucket/key``.

    Raises:
        InputError: the scheme is unknown, or the filesystem cannot be set up (no network
            to resolve an S3 bucket's region, missing credentials...).
    """
    import pyarrow as pa
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)
    except pa.ArrowInvalid as err:
        if "Unrecognized filesystem type" not in str(err):
            raise InputError(f"{uri} is not a valid URI ({err}); check its spelling") from None
        return _fsspec_filesystem(uri)
    except (OSError, pa.ArrowException) as err:
        raise InputError(
            f"cannot open the filesystem of {uri}: {err}. Check the network and credentials; "
            "for s3:// outside us-east-1 you can name the region: s3://bucket/key?region=REGION"
        ) from None


def _fsspec_filesystem(uri: str) -> tuple[Any, str]:
    """Schemes pyarrow lacks (memory://, az://, hf://...) through fsspec, like Ray Data."""
    scheme = urlsplit(uri).scheme
    hint = "use s3://, gs://, file:// or a local path"
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise InputError(f"unknown storage scheme {scheme}:// in {uri}: {hint}") from None
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    try:
        fs, inner = url_to_fs(uri)
    except (ImportError, ValueError) as err:
        raise InputError(f"unknown storage scheme {scheme}:// in {uri} ({err}): {hint}") from None
    return PyFileSystem(FSSpecHandler(fs)), inner


def split(path: str) -> tuple[Any | None, str]:
    """``(filesystem, inner path)`` for a URI, ``(None, path)`` for a local path.

    Handy for pyarrow functions that take ``filesystem=`` (None means local).
    """
    return resolve(path) if is_uri(path) else (None, path)


def name_of(path: str) -> str:
    """The path without a URI's scheme, host and query: what file suffixes are read from."""
    return urlsplit(path).path if is_uri(path) else path


def kind_of(path: str) -> str | None:
    """``"file"``, ``"dir"`` or None (missing) for a local path or URI."""
    if not is_uri(path):
        p = Path(path)
        return "file" if p.is_file() else "dir" if p.is_dir() else None
    import pyarrow.fs as pafs

    fs, inner = resolve(path)
    kind = fs.get_file_info(inner).type
    return {pafs.FileType.File: "file", pafs.FileType.Directory: "dir"}.get(kind)


def file_size(path: str) -> int:
    """Size in bytes of a local file or a file URI."""
    if not is_uri(path):
        return os.path.getsize(path)
    fs, inner = resolve(path)
    return int(fs.get_file_info(inner).size)


def list_files(uri: str) -> list[tuple[str, str]]:
    """Every file under a directory URI, recursively.

    Returns:
        ``(path relative to the directory with / separators, URI of the file)``, sorted.
    """
    import pyarrow.fs as pafs

    fs, inner = resolve(uri)
    base = inner.rstrip("/")
    infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    found = []
    for info in infos:
        if info.type == pafs.FileType.File:
            relative = info.path[len(base) :].lstrip("/")
            found.append((relative, join(uri, relative)))
    return sorted(found)


def join(base: str, *names: str) -> str:
    """``base/name/...`` for a local path (as :class:`pathlib.Path` writes it) or a URI."""
    if not is_uri(base):
        return str(Path(base, *names))
    head, query = _split_query(base)
    return "/".join([head.rstrip("/"), *(n.strip("/") for n in names)]) + query


def parent(path: str) -> str:
    """The directory holding ``path`` (a local path or a URI, query kept)."""
    if not is_uri(path):
        return str(Path(path).parent)
    head, query = _split_query(path)
    return head.rstrip("/").rsplit("/", 1)[0] + query


def _split_query(uri: str) -> tuple[str, str]:
    # String surgery, not urlunsplit: that would turn file:///x into file:/x.
    head, mark, query = uri.partition("?")
    return head, mark + query


@contextmanager
def _writing(path: str) -> Iterator[None]:
    """Turn an OSError while writing ``path`` into an InputError naming it and the fixes."""
    try:
        yield
    except OSError as err:
        raise InputError(
            f"cannot write {path}: {err}. Check the path (every parent must be a directory, "
            "not a file) and its permissions; for s3:// or gs:// check that the bucket exists "
            "and that your credentials may write to it"
        ) from err


def make_dirs(path: str) -> None:
    """Create a directory and its parents (object stores may only record a marker).

    Raises:
        InputError: the directory cannot be created (a file in the way, no permission,
            no bucket or credentials).
    """
    with _writing(path):
        if not is_uri(path):
            Path(path).mkdir(parents=True, exist_ok=True)
            return
        fs, inner = resolve(path)
        fs.create_dir(inner, recursive=True)


def open_input(path: str) -> IO[bytes]:
    """A seekable, buffered binary reader (``readline`` works) for a path or URI.

    Raises:
        FileNotFoundError: the file does not exist (an OSError, as with ``open``).
    """
    if not is_uri(path):
        return open(path, "rb")
    fs, inner = resolve(path)
    return io.BufferedReader(fs.open_input_file(inner))  # type: ignore[arg-type]


def open_output(path: str) -> IO[bytes]:
    """A binary writer that creates or replaces a file (local path or URI).

    For a URI the object appears when the writer is closed.

    Raises:
        InputError: the file cannot be created (see :func:`make_dirs`).
    """
    with _writing(path):
        if not is_uri(path):
            return open(path, "wb")
        fs, inner = resolve(path)
        return fs.open_output_stream(inner)


def open_text_output(path: str) -> IO[str]:
    """A UTF-8 text writer for a local path or URI."""
    if not is_uri(path):
        with _writing(path):
            return open(path, "w", encoding="utf-8")
    return io.TextIOWrapper(open_output(path), encoding="utf-8")  # type: ignore[arg-type]


def read_text(path: str) -> str:
    """The whole file as UTF-8 text."""
    with open_input(path) as f:
        return f.read().decode("utf-8")


def write_text(path: str, text: str) -> None:
    """Create or replace a UTF-8 text file (an object store may refuse it only on close)."""
    with _writing(path), open_text_output(path) as f:
        f.write(text)


def copy_file(source: str, destination: str) -> None:
    """Stream one file between any two of local paths and URIs, a block at a time."""
    with open_input(source) as src, open_output(destination) as dst:
        shutil.copyfileobj(src, dst, _COPY_BLOCK)


@contextmanager
def published_dir(target: Path) -> Iterator[Path]:
    """A new directory beside ``target`` to fill; on leaving, it replaces ``target``.

    The swap is by rename, so a reader never sees half a directory; the replaced one is
    moved aside first and removed after. When the body raises, the new directory is
    removed and ``target`` is left as it was. Files and directories are made readable by
    every user (mkdtemp makes them private; what is published is shared: model caches,
    adapters).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        for item in [tmp, *tmp.rglob("*")]:
            item.chmod(0o755 if item.is_dir() else 0o644)
        if target.exists():
            stale = Path(tempfile.mkdtemp(prefix=f".{target.name}.stale.", dir=target.parent))
            os.rename(target, stale / target.name)
            os.rename(tmp, target)
            shutil.rmtree(stale, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
