"""Column names and split conventions shared by both modalities of a paired screen."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


def _default_splits() -> dict[str, list[str]]:
    # scGeneScope convention: replicate 3 trains, 5 validates, 4 is the within-experiment test ("WE"),
    # replicates 1 and 2 come from a second experimental round ("HE", held-out experiment).
    return {"train": ["3"], "val": ["5"], "test": ["4"], "test_he": ["1", "2"]}


@dataclass(frozen=True)
class ScreenKeys:
    """Names of the ``obs`` columns phenoseq reads in both modalities.

    ``sample`` identifies a well (the unit that pairs imaging and RNA cells), ``group`` flags controls.
    ``splits`` maps a split name to the replicate values (as strings) that belong to it.
    """

    sample: str = "Sample_ID"
    treatment: str = "Treatment"
    replicate: str = "Replicate"
    batch: str = "batch"
    group: str = "Group"
    splits: dict[str, list[str]] = field(default_factory=_default_splits)

    @property
    def columns(self) -> list[str]:
        return [self.sample, self.treatment, self.replicate, self.batch, self.group]

    def split_of(self, replicate: object) -> str | None:
        """Split name for a replicate value, or None when the replicate is in no split."""
        rep = str(replicate)
        for name, reps in self.splits.items():
            if rep in {str(r) for r in reps}:
                return name
        return None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ScreenKeys":
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
