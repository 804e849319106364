"""Options shared by several commands (the key-column names, the replicate → split map, ``--quiet``) and the
choices the CLI offers, as enums so that ``--help`` lists them and a typo is a usage error."""

from __future__ import annotations

import enum
from typing import Optional

import typer


class Preset(str, enum.Enum):
    """Model sizes (:data:`phenoseq.model.config.PRESETS`)."""

    cpu = "cpu"
    tiny = "tiny"
    paper = "paper"


class Sampler(str, enum.Enum):
    """Samplers (:data:`phenoseq.model.config.CHOICES`)."""

    dpm = "dpm++2m"
    ddim = "ddim"


class InputKind(str, enum.Enum):
    """Input formats of ``convert`` (:data:`phenoseq.io.readers.dispatch.KINDS`, plus auto-detection)."""

    auto = "auto"
    h5ad = "h5ad"
    scgenescope = "scgenescope"
    cellprofiler = "cellprofiler"
    sqlite = "sqlite"
    single_cell = "single_cell"
    gct = "gct"
    gctx = "gctx"
    expression = "expression"


class Modality(str, enum.Enum):
    imaging = "imaging"
    rnaseq = "rnaseq"


class Normalize(str, enum.Enum):
    mad_robustize = "mad_robustize"
    none = "none"


class NormalizeAgainst(str, enum.Enum):
    controls = "controls"
    all = "all"


class Backend(str, enum.Enum):
    """Measurement backends of ``featurize`` (:data:`phenoseq.featurize.pipeline.BACKENDS`)."""

    phenoseq = "phenoseq"
    cp_measure = "cp-measure"


QUIET = typer.Option(False, "--quiet", "-q", help="No progress bars or tables.")
DEVICE = typer.Option("auto", "--device", help="Where the network runs: cpu, cuda, cuda:N or auto (a GPU when there is one).")
LAYER = typer.Option(None, "--layer", help="Read the RNA values from this layer of the RNA file (e.g. counts, when X "
                     "holds log-normalised values) instead of X.")
SAMPLE_KEY = typer.Option("Sample_ID", help="obs column naming the well/sample.")
TREATMENT_KEY = typer.Option("Treatment", help="obs column naming the treatment.")
REPLICATE_KEY = typer.Option("Replicate", help="obs column naming the replicate.")
BATCH_KEY = typer.Option("batch", help="obs column naming the batch.")
GROUP_KEY = typer.Option("Group", help="obs column flagging controls (value 'control').")
SPLITS = typer.Option(
    None, "--splits",
    help="Replicate → split map, e.g. 'train=3;val=5;test=4;test_he=1,2' (the default, scGeneScope's). "
         "Splits: train, val, test (WE), test_he (HE); replicates in no split are left out.",
)


def parse_splits(spec: Optional[str]) -> Optional[dict[str, list[str]]]:
    """``'train=3;val=5;test=4;test_he=1,2'`` → ``{"train": ["3"], ...}``; ``None`` keeps the default map."""
    from phenoseq.errors import PhenoseqError

    if spec is None:
        return None
    out: dict[str, list[str]] = {}
    for part in (p.strip() for p in spec.split(";") if p.strip()):
        name, sep, reps = part.partition("=")
        name = name.strip()
        values = [r.strip() for r in reps.split(",") if r.strip()]
        if not sep or not name or not values:
            raise PhenoseqError(f"--splits: cannot read {part!r}; write SPLIT=REPLICATE[,REPLICATE...] separated by ';', "
                                "e.g. 'train=3;val=5;test=4;test_he=1,2'")
        if name in out:
            raise PhenoseqError(f"--splits: split {name!r} is given twice")
        out[name] = values
    if "train" not in out:
        raise PhenoseqError(f"--splits {spec!r} names no 'train' split; the model needs training replicates")
    seen: dict[str, str] = {}
    for name, values in out.items():
        for v in values:
            if v in seen:
                raise PhenoseqError(f"--splits: replicate {v!r} is in both {seen[v]!r} and {name!r}")
            seen[v] = name
    return out


def screen_keys(sample_key: str = "Sample_ID", treatment_key: str = "Treatment", replicate_key: str = "Replicate",
                batch_key: str = "batch", group_key: str = "Group", splits: Optional[str] = None):
    """A :class:`~phenoseq.io.keys.ScreenKeys` from the shared options."""
    from phenoseq.io.keys import ScreenKeys

    parsed = parse_splits(splits)
    extra = {} if parsed is None else {"splits": parsed}
    return ScreenKeys(sample=sample_key, treatment=treatment_key, replicate=replicate_key, batch=batch_key,
                      group=group_key, **extra)
