"""The fuzz targets on their seed corpora, as part of the ordinary suite: every seed (the
regressions the fuzzer found among them) must pass its target, and every target has seeds.
The time-boxed fuzzing itself is ``make fuzz`` (tests/fuzz/run.py), not part of ``make test``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.targets import TARGETS

CORPUS = Path(__file__).resolve().parent / "corpus"
SEEDS = sorted((d.name, p) for d in CORPUS.iterdir() if d.is_dir() for p in d.iterdir())


def test_every_target_has_a_seed_corpus_and_every_corpus_a_target() -> None:
    assert {d.name for d in CORPUS.iterdir() if d.is_dir()} == set(TARGETS)
    assert {name for name, _ in SEEDS} == set(TARGETS)


@pytest.mark.parametrize(("target", "seed"), SEEDS, ids=[f"{t}/{p.name}" for t, p in SEEDS])
def test_seed_passes_its_target(target: str, seed: Path) -> None:
    TARGETS[target](seed.read_bytes())
