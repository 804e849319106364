"""The command line: simulate → info → train → generate, exit codes, and nothing written on bad input."""

import anndata as ad
import numpy as np
import pytest

from phenoseq.cli import run


@pytest.fixture(scope="module")
def screen_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("screen")
    assert run("simulate", "--out", str(out), "--imaging-cells", "30", "--rna-cells", "20", "--genes", "150",
               "--features", "30", "--seed", "3", "-q") == 0
    return out


def test_simulate_writes_a_valid_pair(screen_dir):
    imaging = ad.read_h5ad(screen_dir / "imaging.h5ad")
    rnaseq = ad.read_h5ad(screen_dir / "rnaseq.h5ad")
    assert imaging.n_vars == 30 and rnaseq.n_vars == 150
    assert imaging.obs["Treatment"].nunique() == 28


def test_info_summarises(screen_dir, capsys):
    assert run("info", str(screen_dir / "imaging.h5ad"), str(screen_dir / "rnaseq.h5ad")) == 0
    out = capsys.readouterr().out
    assert "paired: 140 wells, 28 treatments" in out and "no problems found" in out
    # Order of the two files does not matter: counts mark the RNA file.
    assert run("info", str(screen_dir / "rnaseq.h5ad"), str(screen_dir / "imaging.h5ad"), "--json") == 0
    assert '"wells": 140' in capsys.readouterr().out


def test_info_reads_zarr_stores(screen_dir, tmp_path, capsys):
    for name in ("imaging", "rnaseq"):
        ad.read_h5ad(screen_dir / f"{name}.h5ad").write_zarr(tmp_path / f"{name}.zarr")
    assert run("info", str(tmp_path / "imaging.zarr"), str(tmp_path / "rnaseq.zarr")) == 0
    assert "paired: 140 wells, 28 treatments" in capsys.readouterr().out


def test_info_reports_problems_with_exit_1(screen_dir, tmp_path, capsys):
    rnaseq = ad.read_h5ad(screen_dir / "rnaseq.h5ad")
    del rnaseq.obs["Replicate"]
    rnaseq.write_h5ad(tmp_path / "bad.h5ad")
    assert run("info", str(screen_dir / "imaging.h5ad"), str(tmp_path / "bad.h5ad")) == 1
    assert "missing column(s) ['Replicate']" in capsys.readouterr().out


def test_bad_input_exits_2_and_writes_nothing(screen_dir, tmp_path, capsys):
    imaging = ad.read_h5ad(screen_dir / "imaging.h5ad")
    imaging.X[0, 0] = np.nan
    imaging.write_h5ad(tmp_path / "nan.h5ad")
    model_dir = tmp_path / "model"
    assert run("train", "-i", str(tmp_path / "nan.h5ad"), "-r", str(screen_dir / "rnaseq.h5ad"),
               "-o", str(model_dir), "--preset", "tiny", "-q") == 2
    assert "NaN/inf" in capsys.readouterr().err
    assert not model_dir.exists()
    assert run("generate", "-m", str(tmp_path / "nowhere"), "-i", str(screen_dir / "imaging.h5ad"),
               "-o", str(tmp_path / "syn.h5ad"), "-q") == 2
    assert not (tmp_path / "syn.h5ad").exists()
    assert run("simulate") == 2  # usage error: --out is required


def test_train_generate_resume(screen_dir, tmp_path, capsys):
    model_dir = tmp_path / "model"
    imaging, rnaseq = str(screen_dir / "imaging.h5ad"), str(screen_dir / "rnaseq.h5ad")
    assert run("train", "-i", imaging, "-r", rnaseq, "-o", str(model_dir), "--preset", "tiny",
               "--max-epochs", "1", "-q") == 0
    assert run("train", "-i", imaging, "-r", rnaseq, "-o", str(model_dir), "--preset", "tiny", "-q") == 2
    assert "pass --resume" in capsys.readouterr().err
    assert run("train", "-i", imaging, "-r", rnaseq, "-o", str(model_dir), "--resume", "--max-epochs", "2", "-q") == 0
    syn_path = tmp_path / "syn.h5ad"
    assert run("generate", "-m", str(model_dir), "-i", imaging, "-o", str(syn_path), "--cells-per-well", "3",
               "--seed", "4", "-q") == 0
    syn = ad.read_h5ad(syn_path)
    assert syn.n_obs == 140 * 3 and "X_phenoseq" in syn.obsm
    wells = ad.read_h5ad(tmp_path / "syn.wells.h5ad")  # the well-level file beside it
    assert wells.n_obs == 140 and list(wells.var_names) == list(syn.var_names)
    assert (wells.layers["lower"] <= wells.X).all() and (wells.X <= wells.layers["upper"]).all()
    assert wells.uns["phenoseq"]["calibrated"] and wells.uns["phenoseq"]["level"] == 0.9
    # Neither file is replaced without --overwrite, nor written when the other cannot be.
    other = tmp_path / "other.h5ad"
    assert run("generate", "-m", str(model_dir), "-i", imaging, "-o", str(other), "--wells-out",
               str(tmp_path / "syn.wells.h5ad"), "-q") == 2
    assert "--wells-out" in capsys.readouterr().err and not other.exists()
    assert run("generate", "-m", str(model_dir), "-i", imaging, "-o", str(other), "--wells-out", str(other), "-q") == 2
    assert run("generate", "-m", str(model_dir), "-i", imaging, "-o", str(other), "--level", "1.5", "-q") == 2
    assert not other.exists() and not (tmp_path / "other.wells.h5ad").exists()
    assert run("generate", "-m", str(model_dir), "-i", imaging, "-o", str(other), "--level", "0.5",
               "--cells-per-well", "2", "--wells-out", str(tmp_path / "w50.h5ad"), "-q") == 0
    narrow = ad.read_h5ad(tmp_path / "w50.h5ad")
    assert (narrow.layers["upper"] - narrow.layers["lower"]).mean() < (wells.layers["upper"] - wells.layers["lower"]).mean()
    # Refuses to write over its own input.
    assert run("generate", "-m", str(model_dir), "-i", imaging, "-o", imaging, "-q") == 2
    assert ad.read_h5ad(imaging).n_vars == 30


def test_split_map_and_unseen_treatments_on_the_command_line(screen_dir, tmp_path, capsys):
    """Real conversions rarely use replicates 3/5/4: --splits maps them; --allow-unseen trains without some
    treatments' wells (they are left to the model as unseen compounds)."""
    imaging = ad.read_h5ad(screen_dir / "imaging.h5ad")
    rnaseq = ad.read_h5ad(screen_dir / "rnaseq.h5ad")
    for a, name in ((imaging, "img.h5ad"), (rnaseq, "rna.h5ad")):
        a.obs["Replicate"] = a.obs["Replicate"].map({"1": "A", "2": "B", "3": "C", "4": "D", "5": "E"})
        drop = (a.obs["Treatment"] == "HI-1") & (a.obs["Replicate"] == "C")
        a[~drop.to_numpy()].copy().write_h5ad(tmp_path / name)
    files = (str(tmp_path / "img.h5ad"), str(tmp_path / "rna.h5ad"))
    splits = ["--splits", "train=C;val=E;test=D;test_he=A,B"]
    assert run("info", *files, *splits) == 1
    assert "HI-1" in capsys.readouterr().out
    assert run("info", *files, *splits, "--allow-unseen") == 0
    assert run("train", "-i", files[0], "-r", files[1], "-o", str(tmp_path / "m"), "--preset", "tiny",
               "--max-epochs", "1", *splits, "-q") == 2
    assert "HI-1" in capsys.readouterr().err
    assert run("train", "-i", files[0], "-r", files[1], "-o", str(tmp_path / "m"), "--preset", "tiny",
               "--max-epochs", "1", *splits, "--allow-unseen", "-q") == 0
    import json

    assert json.loads((tmp_path / "m" / "model.json").read_text())["keys"]["splits"]["train"] == ["C"]


def test_cli_choices_match_the_library():
    """The CLI's enums are written out (so --help needs no torch import); they must list what the library takes."""
    from phenoseq.cli.options import Backend, InputKind, Preset, Sampler
    from phenoseq.featurize.pipeline import BACKENDS
    from phenoseq.io.readers.dispatch import KINDS
    from phenoseq.model.config import CHOICES, PRESETS

    assert [p.value for p in Preset] == list(PRESETS)
    assert [s.value for s in Sampler] == list(CHOICES["sampler"])
    assert [k.value for k in InputKind] == ["auto", *KINDS]
    assert [b.value for b in Backend] == list(BACKENDS)


def test_counts_in_a_layer(screen_dir, tmp_path, capsys):
    """An RNA file with log-normalised X and raw counts in layers["counts"], as scanpy users keep it."""
    import scipy.sparse as sp

    rnaseq = ad.read_h5ad(screen_dir / "rnaseq.h5ad")
    counts = sp.csr_matrix(rnaseq.X)
    rnaseq.layers["counts"] = counts
    rnaseq.X = sp.csr_matrix(np.log1p(counts.multiply(1e4 / np.maximum(counts.sum(axis=1), 1)).toarray()))
    path = tmp_path / "lognorm.h5ad"
    rnaseq.write_h5ad(path)
    imaging = str(screen_dir / "imaging.h5ad")
    assert run("info", imaging, str(path)) == 1
    assert "--layer counts" in capsys.readouterr().out
    assert run("info", imaging, str(path), "--layer", "counts") == 0
    assert run("train", "-i", imaging, "-r", str(path), "--layer", "counts", "-o", str(tmp_path / "m"),
               "--preset", "tiny", "--max-epochs", "1", "-q") == 0
    assert run("train", "-i", imaging, "-r", str(path), "--layer", "nope", "-o", str(tmp_path / "m2"),
               "--preset", "tiny", "-q") == 2
    assert "nope" in capsys.readouterr().err and not (tmp_path / "m2").exists()
