"""`pytest --llmbench-list`: the backend's installed models as a table."""

from __future__ import annotations

import pytest
from _pytest.config import create_terminal_writer

from ..backends.base import ModelInfo
from ..exchange import BackendError
from ..options import SHORT_NAMES_TAKEN, Settings


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return "-"  # pragma: no cover


def _flag(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def model_table(models: list[ModelInfo]) -> str:
    header = ["model", "size", "quant", "context", "tools", "reasoning", "loaded"]
    rows = [
        [m.key, _size(m.size_bytes), m.quantization or "-",
         str(m.context_length) if m.context_length else "-",
         _flag(m.tool_use), _flag(m.reasoning), "yes" if m.loaded else ""]
        for m in models
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, ["-" * w for w in widths], *rows]
    )


def list_models(settings: Settings, config: pytest.Config) -> int:
    from ..backends import make_backend

    # This runs in pytest_cmdline_main, before the terminal reporter exists.
    writer = create_terminal_writer(config)
    try:
        backend = make_backend(
            settings.backend, settings.base_url, timeout_s=min(settings.timeout, 30.0)
        )
        models = backend.list_models()
        backend.close()
    except BackendError as exc:
        writer.line(f"llmbench: {exc.message}", red=True)
        return 1
    writer.line(f"{settings.backend} at {backend.base_url}: {len(models)} model(s)")
    writer.line(model_table(models))
    taken = "--models" in config.stash.get(SHORT_NAMES_TAKEN, ())
    flag = "--llmbench-models" if taken else "--models"
    writer.line(f"benchmark them with: pytest {flag}=KEY[,KEY]  (built in: reference, null)")
    return 0
