"""Safe checkpoint files: tensors in safetensors, everything else in JSON. Nothing is ever unpickled."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from phenoseq.errors import PhenoseqError

FORMAT = "phenoseq-checkpoint"
FORMAT_VERSION = 1


def read_tensors(path: str | Path) -> dict[str, np.ndarray]:
    """Load a safetensors file as numpy arrays; anything else (a pickle, a truncated file) is refused."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise PhenoseqError(f"{path}: missing; a phenoseq model directory holds model.safetensors and model.json")
    head = path.read_bytes()[:8]
    if len(head) < 8:
        raise PhenoseqError(f"{path}: truncated or empty; not a safetensors file")
    if head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05") or head[:4] == b"PK\x03\x04":
        raise PhenoseqError(
            f"{path}: this is a pickle / torch.save file, which phenoseq never loads (loading it could run code). "
            "Use a model saved by phenoseq (safetensors + JSON)."
        )
    try:
        return load_file(str(path))
    except (SafetensorError, ValueError, OSError, Exception) as exc:  # safetensors raises several types
        raise PhenoseqError(f"{path}: not a valid safetensors file ({exc}); the file may be truncated") from exc


def read_json(path: str | Path, kind: str = "model") -> dict:
    """Load the JSON half of a checkpoint and check it is phenoseq's."""
    path = Path(path)
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise PhenoseqError(f"{path}: missing; a phenoseq {kind} directory holds {kind}.safetensors and {kind}.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PhenoseqError(f"{path}: not valid JSON ({exc}); the file may be truncated or not phenoseq's") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PhenoseqError(f"{path}: not a phenoseq checkpoint description (no \"format\": \"{FORMAT}\")")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise PhenoseqError(f"{path}: written by a newer phenoseq (format {meta['format_version']}); upgrade phenoseq")
    return meta
