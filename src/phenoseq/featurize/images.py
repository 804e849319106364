"""Finding and loading Cell Painting fields: one TIFF per channel, or one stacked TIFF per field.

A *field* is one imaged site of one well. Two layouts are understood:

* **per-channel files** — the file-name pattern has a ``{channel}`` group, e.g.
  ``{plate}_{well}f{site}d{channel}.tif``; ``channels`` maps a channel name to the token captured by
  ``{channel}`` (``{"DNA": "0", "PH3": "1"}``). Without a mapping the tokens are the names.
* **stacked files** — no ``{channel}`` group, e.g. ``{well}_s{site}.tif``; each file holds C×Y×X or
  Y×X×C planes. ``channels`` maps a name to the plane index (as a string or int). Without a mapping the
  names come from the file's own metadata (``{"channels": [...]}``, as
  :func:`phenoseq.simulate.images.write_image_fields` writes) and otherwise must be given.

A pattern is either a format string with ``{well}``, ``{site}``, ``{channel}`` and any other ``{name}``
placeholders, or a regular expression with the same named groups (``(?P<well>...)``). It must match the
whole file name (not the folder); format patterns ignore case (``.TIF`` = ``.tif``). In a format pattern
``{well}`` matches plate positions (``A01``, ``AB12``) and ``{site}`` digits; other well IDs need a regex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from phenoseq.errors import PhenoseqError

DEFAULT_PATTERN = "{well}_s{site}.tif"

# Placeholder regexes: a well is a plate position such as A01 or AB12 so that a greedy prefix
# placeholder (``{plate}_{well}``) cannot swallow part of it; other placeholders match lazily.
_PLACEHOLDER_REGEX = {"well": r"[A-Za-z]{1,2}\d{1,3}", "site": r"\d+", "channel": r"[^/]+?"}


@dataclass
class FieldSpec:
    """Where one field's pixels are: ``files`` maps channel name → path (per-channel layout), or
    ``stack`` is the one file holding every channel (stacked layout)."""

    well: str
    site: str
    files: dict[str, Path] = field(default_factory=dict)
    stack: Path | None = None

    @property
    def name(self) -> str:
        """Field identifier used in obs (``Metadata_Field``), e.g. ``A01_s1``."""
        return f"{self.well}_s{self.site}"

    @property
    def file_names(self) -> str:
        """File name(s) the field was read from, ``;``-separated in channel order."""
        if self.stack is not None:
            return self.stack.name
        return ";".join(p.name for p in self.files.values())


@dataclass
class Field:
    """One loaded field: ``images`` maps channel name → 2-D float32 array (Y × X, all the same shape),
    scaled to 0–1 by the file's integer range as CellProfiler does (uint8 / 255, uint16 / 65535)."""

    spec: FieldSpec
    images: dict[str, np.ndarray]

    @property
    def shape(self) -> tuple[int, int]:
        return next(iter(self.images.values())).shape


def normalise_well(well: str) -> str:
    """``a1`` → ``A01``: plate positions compare equal however they are zero-padded or cased."""
    m = re.fullmatch(r"([A-Za-z]+)0*(\d+)", well.strip())
    if not m:
        return well.strip()
    return f"{m.group(1).upper()}{int(m.group(2)):02d}"


def compile_pattern(pattern: str) -> re.Pattern:
    """Compile a format-style (``{well}_s{site}.tif``) or regex (``(?P<well>...)``) file-name pattern."""
    if "(?P<" in pattern:
        try:
            rx = re.compile(pattern)
        except re.error as exc:
            raise PhenoseqError(f"--pattern {pattern!r} is not a valid regular expression ({exc})") from exc
    else:
        parts, pos = [], 0
        for m in re.finditer(r"\{(\w+)\}", pattern):
            parts.append(re.escape(pattern[pos : m.start()]))
            name = m.group(1)
            parts.append(f"(?P<{name}>{_PLACEHOLDER_REGEX.get(name, '.+?')})")
            pos = m.end()
        parts.append(re.escape(pattern[pos:]))
        try:
            rx = re.compile("".join(parts), re.IGNORECASE)
        except re.error as exc:  # e.g. the same placeholder twice
            raise PhenoseqError(f"--pattern {pattern!r} is not a valid pattern ({exc})") from exc
    if "well" not in rx.groupindex:
        raise PhenoseqError(
            f"--pattern {pattern!r} has no {{well}} group; add one, e.g. '{{well}}_s{{site}}.tif' "
            "or a regex with (?P<well>...)"
        )
    return rx


def discover_fields(
    images_dir: str | Path, pattern: str | None = None, channels: Mapping[str, str | int] | None = None
) -> list[FieldSpec]:
    """List the fields in ``images_dir`` (not recursive), sorted by well then site.

    ``channels`` (name → file token or plane index) restricts per-channel files to the mapped tokens;
    every field must then have every mapped channel. Raises :class:`PhenoseqError` when nothing matches
    or a field lacks a channel.
    """
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise PhenoseqError(f"{images_dir}: not a folder of images; pass the folder that holds the TIFF files")
    rx = compile_pattern(pattern or DEFAULT_PATTERN)
    per_channel = "channel" in rx.groupindex
    names = sorted(p.name for p in images_dir.iterdir() if p.is_file())
    token_to_name = {str(v): k for k, v in channels.items()} if channels else None

    specs: dict[tuple[str, str], FieldSpec] = {}
    for fname in names:
        m = rx.fullmatch(fname)
        if m is None:
            continue
        well = normalise_well(m.group("well"))
        site = m.group("site") if "site" in rx.groupindex else "1"
        site = str(int(site)) if site.isdigit() else site  # "01" and "1" are one site
        spec = specs.setdefault((well, site), FieldSpec(well=well, site=site))
        if not per_channel:
            if spec.stack is not None:
                raise PhenoseqError(
                    f"{images_dir}: both {spec.stack.name} and {fname} are well {well} site {site}; "
                    "make --pattern capture a distinguishing {site}"
                )
            spec.stack = images_dir / fname
            continue
        token = m.group("channel")
        if token_to_name is not None:
            if token not in token_to_name:
                continue  # a channel the user did not ask for (or an overlay/thumbnail): not needed
            name = token_to_name[token]
        else:
            name = token
        if name in spec.files:
            raise PhenoseqError(
                f"{images_dir}: {spec.files[name].name} and {fname} are both channel {name!r} of well {well} "
                f"site {site}; make --pattern capture a distinguishing {{site}} or {{channel}}"
            )
        spec.files[name] = images_dir / fname

    fields = [s for s in specs.values() if s.stack is not None or s.files]
    if not fields:
        example = ", ".join(names[:3]) or "no files at all"
        raise PhenoseqError(
            f"{images_dir}: no file name matches the pattern {pattern or DEFAULT_PATTERN!r} (found: {example}); "
            "pass --pattern, e.g. '{plate}_{well}_s{site}_w{channel}.tif' for one file per channel"
        )
    if per_channel:
        wanted = list(channels) if channels else sorted({c for s in fields for c in s.files})
        for spec in fields:
            missing = [c for c in wanted if c not in spec.files]
            if missing:
                have = ", ".join(f"{c}={p.name}" for c, p in spec.files.items())
                raise PhenoseqError(
                    f"{images_dir}: field {spec.name} is missing channel(s) {', '.join(missing)} (has {have}); "
                    "add the missing files or drop those channels from --channels"
                )
            spec.files = {c: spec.files[c] for c in wanted}
    return sorted(fields, key=lambda s: (s.well, _site_key(s.site)))


def _site_key(site: str) -> tuple:
    return (0, int(site), "") if site.isdigit() else (1, 0, site)


def load_field(spec: FieldSpec, channels: Mapping[str, str | int] | None = None) -> Field:
    """Read one field's pixels; every channel becomes a 2-D float32 array scaled to 0–1.

    Raises :class:`PhenoseqError` for unreadable files, channels of different shapes, a stacked file
    whose channel names are unknown, and an empty (all-zero) channel.
    """
    if spec.stack is not None:
        images = _load_stack(spec.stack, channels)
    else:
        images = {name: _to_plane(_read_tiff(path), path) for name, path in spec.files.items()}
    shapes = {name: img.shape for name, img in images.items()}
    if len(set(shapes.values())) > 1:
        where = spec.stack.name if spec.stack is not None else spec.file_names
        listed = ", ".join(f"{n} {s[0]}×{s[1]}" for n, s in shapes.items())
        raise PhenoseqError(
            f"field {spec.name} ({where}): channels have different shapes ({listed}); "
            "all channels of a field must be the same size — check that the files belong together"
        )
    scaled = {}
    for name, img in images.items():
        if not np.any(img):
            raise PhenoseqError(
                f"field {spec.name}: channel {name!r} is empty (all zeros) in "
                f"{spec.stack.name if spec.stack is not None else spec.files[name].name}; "
                "the file is blank or was written incompletely — re-export it or remove the field"
            )
        scaled[name] = _scale(img)
    return Field(spec=spec, images=scaled)


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    try:
        return tifffile.imread(path)
    except Exception as exc:  # tifffile raises several types for a corrupt or non-TIFF file
        raise PhenoseqError(f"{path}: not a readable TIFF ({type(exc).__name__}: {exc})") from exc


def _to_plane(img: np.ndarray, path: Path) -> np.ndarray:
    img = np.squeeze(img)
    if img.ndim != 2:
        raise PhenoseqError(
            f"{path}: expected one 2-D plane per channel file, got shape {img.shape}; "
            "for files holding all channels use a --pattern without {channel}"
        )
    return img


def _stack_channel_names(path: Path) -> list[str] | None:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            meta = tif.shaped_metadata
    except Exception:
        return None
    if meta and isinstance(meta[0], dict) and isinstance(meta[0].get("channels"), list):
        return [str(c) for c in meta[0]["channels"]]
    return None


def _load_stack(path: Path, channels: Mapping[str, str | int] | None) -> dict[str, np.ndarray]:
    data = np.squeeze(_read_tiff(path))
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise PhenoseqError(f"{path}: expected a C×Y×X or Y×X×C stack, got shape {data.shape}")
    # The channel axis is the short one: Cell Painting has ≤ ~10 channels and fields are ≥ 64 px.
    if data.shape[0] > data.shape[-1]:
        data = np.moveaxis(data, -1, 0)
    n = data.shape[0]
    meta_names = _stack_channel_names(path)
    if channels:
        out = {}
        for name, ref in channels.items():
            ref = str(ref)
            if ref.isdigit():
                idx = int(ref)
            elif meta_names and ref in meta_names:
                idx = meta_names.index(ref)
            else:
                known = f"named {', '.join(meta_names)}" if meta_names else "unnamed"
                raise PhenoseqError(
                    f"{path}: channel {name}={ref!r} is neither a plane index nor a channel name in the file "
                    f"({n} planes, {known}); use --channels NAME=INDEX with indices 0..{n - 1}"
                )
            if idx >= n:
                raise PhenoseqError(
                    f"{path}: channel {name}={idx} but the file has only {n} planes (0..{n - 1}); fix --channels"
                )
            out[name] = data[idx]
        return out
    if meta_names is None or len(meta_names) != n:
        raise PhenoseqError(
            f"{path}: {n} planes with no channel names stored in the file; name them with "
            "--channels, e.g. DNA=0,ER=1,RNA=2,AGP=3,Mito=4"
        )
    return {name: data[i] for i, name in enumerate(meta_names)}


def _scale(img: np.ndarray) -> np.ndarray:
    # CellProfiler's convention: integer images are divided by their type's maximum, floats kept.
    if np.issubdtype(img.dtype, np.integer):
        return (img.astype(np.float32) / np.float32(np.iinfo(img.dtype).max))
    return img.astype(np.float32)


def parse_channels(text: str | None) -> dict[str, str] | None:
    """``"DNA=0,PH3=1"`` → ``{"DNA": "0", "PH3": "1"}``; ``None``/empty → ``None``."""
    if not text:
        return None
    out: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, token = item.partition("=")
        name, token = name.strip(), token.strip()
        if not sep or not name or not token:
            raise PhenoseqError(
                f"--channels item {item!r} is not NAME=TOKEN; write e.g. --channels DNA=d0,PH3=d1,cellbody=d2"
            )
        if name in out:
            raise PhenoseqError(f"--channels names {name!r} twice; give each channel one token")
        out[name] = token
    return out or None
