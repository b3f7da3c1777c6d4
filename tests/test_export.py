"""The library is written only by nbdev_export: exporting the notebooks again must not change it."""
import filecmp, shutil, subprocess, sys
from pathlib import Path
from conftest import ROOT

def test_nbdev_export_leaves_library_unchanged(tmp_path):
    for name in ['settings.ini', 'nbs', 'lungrepro']:
        src = ROOT/name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path/name)
    exe = Path(sys.executable).parent/'nbdev_export'
    subprocess.run([str(exe)], cwd=tmp_path, check=True)
    cmp = filecmp.dircmp(ROOT/'lungrepro', tmp_path/'lungrepro', ignore=['__pycache__'])
    assert not (cmp.diff_files or cmp.left_only or cmp.right_only), \
        f'nbdev_export changes lungrepro/: {cmp.diff_files + cmp.left_only + cmp.right_only}; run nbdev_export and commit'

def test_notebooks_are_valid_nbformat():
    "Every notebook validates as nbformat 4.5 with an id on every cell (papermill and JupyterLab warn without them)."
    import json, nbformat
    for nb in sorted((ROOT/'nbs').glob('*.ipynb')):
        raw = json.loads(nb.read_text())
        missing = [k for k, c in enumerate(raw['cells']) if 'id' not in c]
        assert not missing, f'{nb.name}: cells {missing} have no id'
        nbformat.validate(raw)
