"""The extraction cache: one file per nodule, atomic writes, a killed run loses nothing, reruns reuse."""
import numpy as np
import pytest
import lungrepro.data as data
from lungrepro.core import load_npz
from lungrepro.lidc import CTSource, CTVolume, get_scan, annotation_table, nodule_table

class FlatSource(CTSource):
    "A cheap CT source for cache tests: the scan's geometry filled with -800 HU; counts its loads."
    name = 'flat'
    def __init__(self): self.loads = 0
    def load(self, scan):
        self.loads += 1
        z = np.asarray(scan.slice_zvals, float)
        return CTVolume(np.full((len(z), 512, 512), -800, np.int16), z, float(scan.pixel_spacing), scan.patient_id, self.name)

@pytest.fixture(scope='module')
def nodules():
    nod = nodule_table(annotation_table())
    return nod[nod.patient_id.isin(['LIDC-IDRI-0001', 'LIDC-IDRI-0002'])]

def test_killed_run_leaves_no_partial_file_and_resumes(nodules, tmp_path, monkeypatch):
    src, real_save = FlatSource(), data.save_npz
    calls = []
    def dying_save(path, **arrays):
        calls.append(path)
        if len(calls) == 2: raise KeyboardInterrupt('killed mid-run')
        real_save(path, **arrays)
    monkeypatch.setattr(data, 'save_npz', dying_save)
    with pytest.raises(KeyboardInterrupt):
        data.extract_nodules(nodules, src, {'cube': 16}, out=tmp_path, progress=False)
    monkeypatch.setattr(data, 'save_npz', real_save)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == '.npz'          # the finished one, no temporary leftovers
    load_npz(files[0])
    paths = data.extract_nodules(nodules, src, {'cube': 16}, out=tmp_path, progress=False)['cube']
    assert len(paths) == len(nodules) and all(p.exists() for p in paths)
    loads = src.loads
    data.extract_nodules(nodules, src, {'cube': 16}, out=tmp_path, progress=False)
    assert src.loads == loads                                      # the cached rerun loads no volume

def test_crops_carry_every_annotators_mask(nodules, tmp_path):
    paths = data.extract_nodules(nodules, FlatSource(), {'crop': 50}, out=tmp_path, progress=False)['crop']
    for p, r in zip(paths, nodules.itertuples()):
        c = load_npz(p)
        assert c['masks'].shape == (r.agreement, 50, 50) and c['hu'].shape == (50, 50)
        assert c['masks'].any(axis=(1, 2)).sum() >= 1              # the central slice holds at least one outline

def test_unknown_kind(nodules, tmp_path):
    with pytest.raises(ValueError, match='unknown extraction'):
        data.extract_nodules(nodules, FlatSource(), {'sphere': 16}, out=tmp_path)

def test_one_volume_per_scan_for_several_kinds(nodules, monkeypatch, tmp_path):
    monkeypatch.setenv('LUNGREPRO_CACHE', str(tmp_path))
    src = FlatSource()
    paths = data.extract_nodules(nodules, src, {'cube': 16, 'crop': 32}, progress=False)
    assert src.loads == nodules.scan_id.nunique()
    assert paths['cube'][0].parent != paths['crop'][0].parent and all(p.exists() for v in paths.values() for p in v)
