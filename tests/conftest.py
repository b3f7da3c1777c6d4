"""Shared fixtures: the real LIDC-IDRI DICOM fixtures beside the clone (required in CI)."""
import os
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope='session')
def lidc_fixtures() -> Path:
    "../shared/lidc-fixtures; a CI run without it fails, elsewhere the test is skipped."
    p = ROOT.parent/'shared'/'lidc-fixtures'
    if not p.is_dir():
        if os.environ.get('CI'): pytest.fail(f'{p} is missing in CI')
        pytest.skip('../shared/lidc-fixtures is absent')
    return p
