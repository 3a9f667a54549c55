"""Shared fixtures. grade_rng: the random inputs of the graded course tests come from
NANOPAUSE_GRADE_SEED (default 0), so an instructor can grade on inputs the students never saw."""
import os

import numpy as np
import pytest


@pytest.fixture
def grade_seed():
    return int(os.environ.get("NANOPAUSE_GRADE_SEED", "0"))


@pytest.fixture
def grade_rng(grade_seed):
    return np.random.default_rng(grade_seed)
