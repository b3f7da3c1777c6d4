"""Real DICOM through the LIDC source: masks land on the nodule, partial series, bad input."""
import shutil, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import scipy.ndimage as ndi
from lungrepro.core import load_npz
from lungrepro.lidc import (LIDCSource, get_scan, get_annotations, nodule_masks, masks_on_volume,
                            annotation_table, nodule_table, ScanNotFoundError, CorruptDicomError)
from lungrepro.data import window

@pytest.fixture(scope='module')
def nodule_0001():
    nod = nodule_table(annotation_table())
    return nod[nod.patient_id == 'LIDC-IDRI-0001'].iloc[0]

def test_masks_land_on_the_nodule(lidc_fixtures, nodule_0001):
    vol = LIDCSource(lidc_fixtures).load(get_scan('LIDC-IDRI-0001'))
    assert vol.meta['partial'] and vol.hu.shape[0] == 16
    m, ks, rs, cs = masks_on_volume(vol, nodule_masks(get_annotations(nodule_0001.annotation_ids)))
    box = vol.hu[ks][:, rs, cs]
    assert m.shape[0] == 4
    assert np.median(box[m.any(0)]) > -300
    union = m.any(0)
    ring = ndi.binary_dilation(union, iterations=8) & ~ndi.binary_dilation(union, iterations=3)
    assert np.median(box[ring]) < -700

def test_extract_cli_on_fixtures(lidc_fixtures, tmp_path):
    exe = Path(sys.executable).parent/'lungrepro'
    subprocess.run([str(exe), 'extract', '--source', 'lidc', '--lidc-path', str(lidc_fixtures),
                    '--patients', 'LIDC-IDRI-0001', '--size', '32', '--out', str(tmp_path)], check=True)
    files = list(tmp_path.glob('*.npz'))
    assert len(files) == 1
    c = load_npz(files[0])
    assert c['image'].shape == (32, 32, 32) and c['image'].dtype == np.float32
    assert c['masks'].shape == (4, 32, 32, 32) and set(np.unique(c['masks'])) == {0, 1}
    assert str(c['patient_id']) == 'LIDC-IDRI-0001' and int(c['agreement']) == 4
    np.testing.assert_allclose(c['spacing'], 51 / 32)
    for m in c['masks']:   # every annotator's mask sits on bright (solid) tissue
        assert np.median(c['image'][m > 0]) > window(-300)

def test_missing_scan_and_corrupt_file(lidc_fixtures, tmp_path):
    with pytest.raises(ScanNotFoundError, match='LIDC-IDRI-0001'):
        LIDCSource(tmp_path).load(get_scan('LIDC-IDRI-0001'))
    src = next((lidc_fixtures/'LIDC-IDRI-0002').rglob('*.dcm')).parent
    dst = tmp_path/'LIDC-IDRI-0002'/'study'/src.name
    shutil.copytree(src, dst)
    (dst/'z-0.000000.dcm').write_bytes(b'\0' * 200)
    with pytest.raises(CorruptDicomError, match='z-0.000000.dcm'):
        LIDCSource(tmp_path).load(get_scan('LIDC-IDRI-0002'))

def test_cli_reports_wrong_path(tmp_path):
    exe = Path(sys.executable).parent/'lungrepro'
    r = subprocess.run([str(exe), 'extract', '--source', 'lidc', '--lidc-path', str(tmp_path/'nope'),
                        '--patients', 'LIDC-IDRI-0001', '--out', str(tmp_path/'o')], capture_output=True, text=True)
    assert r.returncode != 0 and 'nope' in r.stderr and 'Traceback' not in r.stderr
    assert not (tmp_path/'o').exists() or not list((tmp_path/'o').iterdir())

def test_partial_series_is_flagged(lidc_fixtures, tmp_path):
    "LIDC-IDRI-0002's fixture holds only the upper part of its nodule: the cube says so and warns."
    from lungrepro.data import extract_nodules
    nod = nodule_table(annotation_table())
    nod = nod[nod.patient_id.isin(['LIDC-IDRI-0001', 'LIDC-IDRI-0002']) & (nod.agreement >= 2)]
    with pytest.warns(UserWarning, match='LIDC-IDRI-0002'):
        paths = extract_nodules(nod, LIDCSource(lidc_fixtures), {'cube': 32}, out=tmp_path, progress=False)['cube']
    cov = {str(load_npz(p)['patient_id']): float(load_npz(p)['coverage']) for p in paths}
    assert cov['LIDC-IDRI-0001'] == 1.0 and 0 < cov['LIDC-IDRI-0002'] < 1
