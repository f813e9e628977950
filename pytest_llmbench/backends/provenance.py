"""Provenance: what answered a run's requests, as the server says it or as measured here.

Each backend that can tell offers `provenance(key) -> dict` (optional, like `parallel_slots`),
asked once after a model loads. Its fields, each present only where known, never guessed:

- `server`: the kind of server ("llama.cpp llama-server", "Ollama", ...);
- `server_version`: its build or version as it reports it;
- `model_file`: `{path, size_bytes, sha256_sampled}` of a model file readable here, or `{path}`
  as a server on another machine names it;
- `model_digest`, `model_source`, `model_listing`, `load_config`: what the server says of the
  model (Ollama's digest, vLLM's model root, LM Studio's listing and load settings);
- `chat_template_sha256` (and `chat_template_tool_use_sha256`): of the template the server
  reports applying;
- `executable`, `threads`: of a server this plugin started itself.

Finding out must never cost a run: `ask` turns any failure into "nothing learned", and every
request here gets a short timeout, so a server that hangs on one of them delays a load by
seconds, not by the request timeout.
"""

from __future__ import annotations

import hashlib
import stat
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from .server import Server

T = TypeVar("T")

# Seconds for each provenance request: the answers are small, and the run waits for them.
TIMEOUT_S = 10.0
SAMPLE_BYTES = 1 << 20
SAMPLED_HASH = "sha256 of the file size and three 1 MiB samples (start, middle, end)"

# (resolved path, size, mtime in ns) -> sha256_sampled: a model file is hashed once per process.
_HASHES: dict[tuple[str, int, int], str] = {}
_HASHES_LOCK = threading.Lock()


def sampled_sha256(path: Path, size: int) -> str:
    """SAMPLED_HASH of the file: three reads of 1 MiB, however large the file (a whole-file hash
    of a 20 GB model would take minutes at every load). Not the file's sha256: two files that
    differ only outside the samples get the same value. A file of at most three samples is
    hashed whole (after its size, so still not its sha256)."""
    digest = hashlib.sha256(f"{size}\n".encode())
    with path.open("rb") as handle:
        if size <= 3 * SAMPLE_BYTES:
            digest.update(handle.read())
        else:
            for offset in (0, (size - SAMPLE_BYTES) // 2, size - SAMPLE_BYTES):
                handle.seek(offset)
                digest.update(handle.read(SAMPLE_BYTES))
    return digest.hexdigest()


def file_identity(path: str | Path) -> dict[str, Any] | None:
    """`{path, size_bytes, sha256_sampled}` of a regular file readable here, else None."""
    try:
        resolved = Path(path).expanduser().resolve()
        info = resolved.stat()
        if not stat.S_ISREG(info.st_mode):
            return None
        key = (str(resolved), info.st_size, info.st_mtime_ns)
        with _HASHES_LOCK:
            digest = _HASHES.get(key)
        if digest is None:
            digest = sampled_sha256(resolved, info.st_size)
            with _HASHES_LOCK:
                _HASHES[key] = digest
    except (OSError, ValueError):  # unreadable, vanished, or a path with a NUL byte
        return None
    return {"path": str(resolved), "size_bytes": info.st_size, "sha256_sampled": digest}


def server_file(server: Server, path: object) -> dict[str, Any] | None:
    """The identity of a model file a server names: measured when the server runs on this
    machine and the file is readable here, else the path as the server gave it."""
    if not isinstance(path, str) or not path.strip():
        return None
    measured = file_identity(path) if server.local else None
    return measured or {"path": path}


def text_sha256(text: object) -> str | None:
    """sha256 of a non-empty text (a chat template), else None."""
    if not isinstance(text, str) or not text:
        return None
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


def text(mapping: object, key: str) -> str | None:
    """`mapping[key]` when the mapping is a dict and the value a non-empty string."""
    if isinstance(mapping, Mapping):
        value = mapping.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def find(items: object, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    """The first object in `items` (a list in a server's JSON, or anything else) that matches."""
    if not isinstance(items, list):
        return None
    return next((item for item in items if isinstance(item, dict) and match(item)), None)


def ask(call: Callable[[], T]) -> T | None:
    """The call's answer, or None whatever went wrong: provenance is learned where it can be."""
    try:
        return call()
    except Exception:
        return None


def of_server(label: str, found: Mapping[str, Any]) -> dict[str, Any]:
    """`found` with the kind of server, or {} when the server told nothing: naming the kind
    alone would be the configuration speaking, not the server."""
    learned = {key: value for key, value in found.items() if value is not None}
    return {"server": label, **learned} if learned else {}


def provenance_of(backend: object, key: str) -> dict[str, Any]:
    """What `backend` can say of the server behind its loaded model `key`; {} when it cannot
    say (no `provenance` method) or failed in a way its own guards missed."""
    method = getattr(backend, "provenance", None)
    if not callable(method):
        return {}
    found = ask(lambda: method(key))
    return dict(found) if isinstance(found, Mapping) else {}


def describe(provenance: Mapping[str, Any] | None) -> str | None:
    """The server and its build in a few words, e.g. `llama.cpp llama-server b6123-8f1d2c3`."""
    if not provenance or not isinstance(provenance.get("server"), str):
        return None
    version = provenance.get("server_version")
    return f"{provenance['server']} {version}" if isinstance(version, str) else provenance["server"]
