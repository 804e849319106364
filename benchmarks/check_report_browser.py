"""Open an HTML report in headless Chromium: every section and figure is in the DOM, no image is broken, the page
does not overflow sideways; saves a full-page screenshot (and 1280 × 2000 tiles of it to look at).

With no folder, it runs a small evaluation first: a small simulated screen (its ground-truth morphology flags come
from ``uns["simulation"]["moa_visible"]``), the baselines and, unless
``--model-epochs 0``, the diffusion model trained for a few epochs so the training history is drawn.

    python benchmarks/check_report_browser.py [--results DIR] [--out DIR] [--model-epochs 5]

Needs ``/usr/bin/chromium`` (``apt-get update && apt-get install -y chromium``). Exit status 1 if a check fails.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
WIDTH, TILE = 1280, 2000
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
# Run in the page once it has loaded: what only a browser knows (decoded image sizes, layout width and height),
# written into the DOM so that --dump-dom carries it out.
PROBE = """<script>window.addEventListener('load', () => {
  for (const img of document.images) img.setAttribute('data-natural', img.naturalWidth + 'x' + img.naturalHeight);
  const d = document.documentElement;
  d.setAttribute('data-size', d.scrollWidth + 'x' + d.scrollHeight);
});</script>"""
NEW_FIGURES = {"mean change scatter": "changes", "treatment fidelity": "changes", "embedding by source": "embedding",
               "training history": "training"}


class _Dom(HTMLParser):
    """The h2 ids, the images (alt, decoded size) and the page size of a dumped DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[tuple[str, str]] = []
        self.size = ""

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "h2" and a.get("id"):
            self.sections.append(a["id"])
        elif tag == "img":
            self.images.append((a.get("alt", ""), a.get("data-natural", "")))
        elif tag == "html":
            self.size = a.get("data-size", "")


def _chromium(args: list[str], timeout: float = 180) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout)


def small_evaluation(out: Path, model_epochs: int) -> Path:
    """Evaluate the baselines (and the model, ``model_epochs`` > 0) on a small screen; write results and report."""
    from phenoseq.evaluate import BenchmarkConfig, evaluate, write_results
    from phenoseq.generate.baselines import standard_baselines
    from phenoseq.io import PairedScreen
    from phenoseq.report import render_report
    from phenoseq.rna.space import RNASpace
    from phenoseq.simulate import SimulationConfig, simulate_screen

    sim = SimulationConfig(imaging_cells_per_well=60, rna_cells_per_well=40, n_genes=400, n_features=80, seed=0)
    imaging, rnaseq = simulate_screen(sim)
    screen = PairedScreen(imaging, rnaseq)
    model = None
    if model_epochs > 0:
        from phenoseq import PhenoSeq

        # A small, briefly trained model: the check is about the page, not the model's quality.
        model = PhenoSeq(screen, preset="cpu", seed=0, dim=64, depth=2, steps=4, n_top_genes=400)
        model.train(max_epochs=model_epochs)
        space = model.rna_space
    else:
        space = RNASpace.fit(screen.subset("rnaseq", screen.wells_in("train")), n_latent=30, seed=0)
    config = BenchmarkConfig(n_boot=100, cells_per_well=20, sets_per_well=3, fidelity_cells=20, embedding_cells=15,
                             max_iter=100)
    result = evaluate(screen, space, standard_baselines(screen, space, model), config=config, moa_key="MoA")
    write_results(result, out)
    render_report(result, out)
    return out


def check(folder: Path, out: Path) -> bool:
    """Load ``folder``'s report in Chromium, print each check; return whether all passed."""
    from phenoseq.evaluate import read_results
    from phenoseq.report.html import REPORT_FILE, _sections

    result = read_results(folder)
    page = (folder / REPORT_FILE).read_text(encoding="utf-8")
    probed = out / "probed.html"
    probed.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    t = time.perf_counter()
    dumped = _chromium(["--virtual-time-budget=10000", f"--window-size={WIDTH},4000", "--dump-dom", probed.as_uri()])
    dom = _Dom()
    dom.feed(dumped.stdout)
    print(f"chromium --dump-dom: exit {dumped.returncode}, {len(dumped.stdout)} characters, "
          f"{time.perf_counter() - t:.1f} s")
    ok = True

    def verdict(passed: bool, what: str) -> None:
        nonlocal ok
        ok &= passed
        print(f"  [{'ok' if passed else 'FAIL'}] {what}")

    expected = [anchor for anchor, _, _ in _sections(result.metrics, result.arrays)]
    verdict(dom.sections == expected, f"sections {dom.sections} (expected {expected})")
    alts = [alt for alt, _ in dom.images]
    verdict(len(alts) == page.count("<img "), f"{len(alts)} images in the DOM, as in the file: {alts}")
    broken = [alt for alt, size in dom.images if not size or size.startswith("0x") or size.endswith("x0")]
    verdict(not broken, "every image decoded: " + ", ".join(f"{a} {s}" for a, s in dom.images))
    for figure, section in NEW_FIGURES.items():
        drawn = figure in alts
        verdict(section in dom.sections and (drawn or "not drawn" in page or "No training history" in page),
                f"new figure {figure!r}: {'drawn' if drawn else 'a note instead'} in section {section!r}")
    width, _, height = dom.size.partition("x")
    verdict(bool(width) and int(width) <= WIDTH, f"page {dom.size or '?'} px: no sideways overflow at {WIDTH} px")
    shot = out / "screenshot.png"
    height_px = min(int(height or 4000), 30000)
    t = time.perf_counter()
    taken = _chromium([f"--window-size={WIDTH},{height_px}", f"--screenshot={shot}", (folder / REPORT_FILE).as_uri()])
    verdict(shot.is_file() and shot.stat().st_size > 10_000,
            f"screenshot {shot} ({WIDTH} × {height_px}, exit {taken.returncode}, {time.perf_counter() - t:.1f} s)")
    if shot.is_file():
        print("  tiles: " + " ".join(str(p) for p in _tiles(shot)))
    return ok


def _tiles(shot: Path) -> list[Path]:
    """Cut the full-page screenshot into :data:`TILE`-pixel-high pieces (what an image viewer can show)."""
    from PIL import Image

    with Image.open(shot) as img:
        paths = []
        for i, top in enumerate(range(0, img.height, TILE)):
            path = shot.with_name(f"screenshot-{i + 1}.png")
            img.crop((0, top, img.width, min(top + TILE, img.height))).save(path)
            paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=None, help="a folder with metrics.json (+ arrays.npz, "
                        "report.html); default: run a small evaluation")
    parser.add_argument("--out", type=Path, default=Path("report-browser-check"), help="where to write")
    parser.add_argument("--model-epochs", type=int, default=5, help="epochs of the diffusion model (0: baselines)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} not found: apt-get update && apt-get install -y chromium")
    args.out.mkdir(parents=True, exist_ok=True)
    folder = args.out / "results"
    t = time.perf_counter()
    if args.results is None:
        small_evaluation(folder, args.model_epochs)
        print(f"small evaluation and report written to {folder} in {time.perf_counter() - t:.0f} s")
    else:
        # Drawn anew by this phenoseq, so the page checked is what the current code renders from those results.
        from phenoseq.evaluate import read_results
        from phenoseq.report import render_report

        for name in ("metrics.json", "arrays.npz"):
            if (args.results / name).exists():
                folder.mkdir(parents=True, exist_ok=True)
                shutil.copy(args.results / name, folder / name)
        render_report(read_results(folder), folder)
        print(f"report of {args.results} rendered into {folder} in {time.perf_counter() - t:.0f} s")
    ok = check(folder, args.out)
    print("all checks passed" if ok else "some checks FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
