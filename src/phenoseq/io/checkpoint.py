"""Safe checkpoint files: tensors in safetensors, everything else in JSON. Nothing is ever unpickled."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from phenoseq.errors import PhenoseqError

FORMAT = "phenoseq-checkpoint"
FORMAT_VERSION = 2
# Key in the safetensors header holding the sha256 of the JSON half: a pair from two different saves (a kill
# between the two renames) is refused instead of resuming from inconsistent state. Format 1 had no such key.
PAIR_KEY = "phenoseq_json_sha256"


def json_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def tensors_header(path: str | Path) -> dict[str, str]:
    """The string metadata of a safetensors file's header (empty when it has none)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        return dict(f.metadata() or {})


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


def read_json(path: str | Path, kind: str = "model") -> tuple[dict, str]:
    """Load the JSON half of a checkpoint and check it is phenoseq's; returns ``(meta, text)``."""
    path = Path(path)
    try:
        text = path.read_text()
        meta = json.loads(text)
    except FileNotFoundError:
        raise PhenoseqError(f"{path}: missing; a phenoseq {kind} directory holds {kind}.safetensors and {kind}.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PhenoseqError(f"{path}: not valid JSON ({exc}); the file may be truncated or not phenoseq's") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise PhenoseqError(f"{path}: not a phenoseq checkpoint description (no \"format\": \"{FORMAT}\")")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise PhenoseqError(f"{path}: written by a newer phenoseq (format {meta['format_version']}); upgrade phenoseq")
    return meta, text


def check_pair(tensors_path: str | Path, json_text: str, meta: dict) -> None:
    """Refuse a tensors file and a JSON file that were not written by the same save."""
    if meta.get("format_version", 1) < 2:
        return
    stored = tensors_header(tensors_path).get(PAIR_KEY)
    if stored != json_digest(json_text):
        raise PhenoseqError(
            f"{Path(tensors_path).parent}: model.safetensors and model.json come from different saves (a run "
            "killed while saving, or a file edited or copied by hand); retrain, or restore both files from one save"
        )


def check_finite(tensors: dict[str, np.ndarray], source: str | Path) -> None:
    """Refuse weights holding NaN/inf: a model with one NaN weight generates NaN everywhere."""
    bad = [k for k, v in tensors.items() if np.issubdtype(v.dtype, np.floating) and not np.isfinite(v).all()]
    if bad:
        raise PhenoseqError(f"{source}: tensors {bad[:5]}{' …' if len(bad) > 5 else ''} hold NaN/inf values; the "
                            "model is damaged (or diverged while training). Retrain it.")
