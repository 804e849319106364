"""Summaries of screen files for ``phenoseq info``: what is there, and every problem found."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp

from phenoseq.errors import PhenoseqError
from phenoseq.io import validate
from phenoseq.io.keys import ScreenKeys
from phenoseq.io.readers.dispatch import detect_kind, read_table
from phenoseq.io.screen import PairedScreen, layer_as_x, matrix_name, modality_problems, modality_warnings

EXPRESSION_FORMATS = ("gct", "gctx")  # formats that only ever hold expression profiles


def looks_like_counts(adata: ad.AnnData, n: int = 2000) -> bool:
    """True when the first ``n`` cells hold non-negative integers (raw counts)."""
    X = adata.X[: min(n, adata.n_obs)]
    data = X.data if sp.issparse(X) else np.asarray(X)
    return bool(data.size) and np.issubdtype(data.dtype, np.number) and bool(
        np.all(np.isfinite(data)) and np.all(data >= 0) and np.all(data == np.round(data))
    )


def _single(adata: ad.AnnData, keys: ScreenKeys, source: str, kind: str, matrix: str = "X") -> dict:
    problems = modality_problems(adata, keys, source, kind, matrix)
    # Warnings about a file that is already refused would only repeat its problems (all-zero counts → zero-count cells).
    warnings = [] if problems else modality_warnings(adata, source, kind)
    out = {"file": source, "modality": "rnaseq" if kind != "imaging" else "imaging", "cells": int(adata.n_obs),
           "variables": int(adata.n_vars), "problems": problems, "warnings": warnings}
    # Well statistics need every key column and at least one cell (an empty file is already a problem).
    if adata.n_obs and all(c in adata.obs.columns for c in keys.columns):
        wells = validate.well_table(adata, keys)  # key_text: replicate 3.0 is "3", as in PairedScreen
        wells["split"] = [keys.split_of(r) or "none" for r in wells[keys.replicate]]
        out.update(
            wells=int(len(wells)),
            treatments=int(wells[keys.treatment].nunique()),
            cells_per_well={"min": int(wells.n_cells.min()), "median": float(wells.n_cells.median()),
                            "max": int(wells.n_cells.max())},
            wells_per_split={s: int(n) for s, n in wells["split"].value_counts().sort_index().items()},
            batches=sorted(wells[keys.batch].unique().tolist()),
        )
    return out


def _guess_kinds(adatas: list[ad.AnnData], formats: list[str], rna_kind: str) -> list[str]:
    """Kind of each file judged on its own: expression formats say what they hold, raw counts mark RNA."""
    return ["expression" if fmt in EXPRESSION_FORMATS else
            rna_kind if looks_like_counts(a) or (rna_kind == "expression" and i == 1) else "imaging"
            for i, (a, fmt) in enumerate(zip(adatas, formats))]


def _imaging_index(files: list[Path], adatas: list[ad.AnnData], formats: list[str], rna_kind: str) -> int:
    """Which of the two files is the imaging file.

    The order given wins (first = imaging) unless the first clearly holds counts and the second clearly does
    not: guessing from the values alone would take bad counts (negative, non-integer, all zero) for imaging
    and hide the real problem behind "could not tell which is which".
    """
    if any(fmt in EXPRESSION_FORMATS for fmt in formats):
        kinds = _guess_kinds(adatas, formats, rna_kind)
        if kinds.count("imaging") != 1:
            raise PhenoseqError(
                f"could not tell which of {files[0]} and {files[1]} is the imaging file: "
                f"both look like {'counts' if kinds[0] != 'imaging' else 'continuous features'}. "
                "Pass the imaging file first and use --expression if the RNA file holds normalised expression."
            )
        return kinds.index("imaging")
    return 1 if looks_like_counts(adatas[0]) and not looks_like_counts(adatas[1]) else 0


def _rna_by_layer(files: list[Path], adatas: list[ad.AnnData], layer: str) -> int:
    """Index of the RNA file when its values are read from ``layers[layer]``: the file that has the layer
    (the second when both have it, as the order given says)."""
    has = [layer in a.layers for a in adatas]
    if not any(has):
        found = "; ".join(f"{f} has {list(a.layers.keys()) or 'none'}" for f, a in zip(files, adatas))
        raise PhenoseqError(f"no file has layers[{layer!r}] to read RNA counts from ({found}). Name one of those "
                            "layers, or leave the layer out to read X")
    return len(has) - 1 - has[::-1].index(True)


def summarise_files(files: list[Path], keys: ScreenKeys, drop_unpaired: bool = False, rna_kind: str = "counts",
                    allow_unseen: bool = False, rna_layer: str | None = None) -> dict:
    """Summary of one modality file, or of an imaging + RNA pair (imaging first; swapped only when the first
    file holds counts and the second does not).

    With ``rna_layer`` the RNA values are read from ``layers[rna_layer]`` of the file that has that layer, which
    also tells which file is the RNA file; a PhenoseqError lists each file's layers when none has it.

    Returns a dict; ``problems`` lists every problem found (empty when the files are valid), ``warnings``
    what is valid but suspicious.
    """
    if not 1 <= len(files) <= 2:
        raise PhenoseqError(f"info takes one file or an imaging and an RNA file, got {len(files)}")
    adatas = [read_table(f, preprocess=False) for f in files]
    formats = [detect_kind(f) for f in files]
    matrix = matrix_name(rna_layer)
    if rna_layer is not None:
        i_rna = _rna_by_layer(files, adatas, rna_layer)
        adatas[i_rna] = layer_as_x(adatas[i_rna], rna_layer, str(files[i_rna]))
        if len(files) == 1:
            return _single(adatas[0], keys, str(files[0]), rna_kind, matrix)
        i_img = 1 - i_rna
    elif len(files) == 1:
        return _single(adatas[0], keys, str(files[0]), _guess_kinds(adatas, formats, rna_kind)[0])
    else:
        i_img = _imaging_index(files, adatas, formats, rna_kind)
    imaging, rnaseq = adatas[i_img], adatas[1 - i_img]
    sources = (str(files[i_img]), str(files[1 - i_img]))
    parts = {"imaging": _single(imaging, keys, sources[0], "imaging"),
             "rnaseq": _single(rnaseq, keys, sources[1], rna_kind, matrix)}
    problems = parts["imaging"]["problems"] + parts["rnaseq"]["problems"]
    summary = {"files": list(sources), **parts, "warnings": parts["imaging"]["warnings"] + parts["rnaseq"]["warnings"]}
    if not problems:
        try:
            screen = PairedScreen(imaging, rnaseq, keys=keys, sources=sources, rna_kind=rna_kind,
                                  unpaired="drop" if drop_unpaired else "error", allow_unseen=allow_unseen)
            summary["paired"] = screen.summary()
        except PhenoseqError as exc:
            # One message may hold several problems ("- " per line); count and print each.
            problems.extend(str(exc).removeprefix("invalid screen:\n- ").split("\n- "))
    summary["problems"] = problems
    return summary


def render_summary(summary: dict, console) -> None:
    """Print a summary from :func:`summarise_files` as rich tables."""
    from rich.table import Table

    parts = [summary] if "modality" in summary else [summary["imaging"], summary["rnaseq"]]
    table = Table(title="screen files")
    table.add_column("")
    for p in parts:
        table.add_column(f"{p['modality']}\n{p['file']}", overflow="fold")

    def row(label: str, fn) -> None:
        table.add_row(label, *[fn(p) for p in parts])

    row("cells", lambda p: str(p["cells"]))
    row("features / genes", lambda p: str(p["variables"]))
    row("wells", lambda p: str(p.get("wells", "?")))
    row("treatments", lambda p: str(p.get("treatments", "?")))
    row("cells per well (min / median / max)",
        lambda p: "{min} / {median:g} / {max}".format(**p["cells_per_well"]) if "cells_per_well" in p else "?")
    row("wells per split", lambda p: ", ".join(f"{k}: {v}" for k, v in p.get("wells_per_split", {}).items()))
    row("batches", lambda p: ", ".join(p.get("batches", [])))
    console.print(table)
    if "paired" in summary:
        s = summary["paired"]
        console.print(
            f"paired: {s['wells']} wells, {s['treatments']} treatments; wells per split "
            + ", ".join(f"{k}: {v}" for k, v in s["wells_per_split"].items())
        )
        dropped = s.get("dropped_wells") or {}
        if any(dropped.values()):
            console.print(f"dropped unpaired wells: {dropped}")
    for warning in summary.get("warnings", []):
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    for problem in summary.get("problems", []):
        console.print(f"[red]problem:[/] {problem}", highlight=False)
    if not summary.get("problems"):
        console.print("[green]no problems found[/]")
