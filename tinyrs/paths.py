"""Every path the package uses, resolved from the package itself, never from the current
directory: papermill and nbval start kernels in other directories."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CONFIGS = PACKAGE_DIR / "configs"
# The checkout this package lives in (an editable install); falls back to the working
# directory for a site-packages install, where the repository folders do not exist.
REPO_ROOT = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").exists() else Path.cwd()
NOTEBOOKS = REPO_ROOT / "notebooks"
DATA_CARDS = REPO_ROOT / "data_cards"
FIGURES = REPO_ROOT / "figures"
RESULTS = REPO_ROOT / "results"
SHARED = REPO_ROOT.parent / "shared"  # the project's shared folder (paper, fixtures, checks)


def data_dir(profile: str = "toy") -> Path:
    """Where `tinyrs data build` writes by default: $TINYRS_DATA/<profile> or <repo>/data/<profile>."""
    root = Path(os.environ.get("TINYRS_DATA", REPO_ROOT / "data"))
    return root / profile


def runs_dir() -> Path:
    return Path(os.environ.get("TINYRS_RUNS", REPO_ROOT / "runs"))
