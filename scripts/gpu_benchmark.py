"""GPU rows for the LNHG and DSNet benchmarks at the paper presets (issues 12, 13): one CUDA device, synthetic inputs of
the paper's shapes, the package's own Learners (`lnhg_learner`, `detector_learner`, `dsnet_learner`) in the mixed precision
they choose on a GPU. No CT is needed, so it runs on a machine that has torch and fastai but no pylidc or data.

    python scripts/gpu_benchmark.py OUT_DIR      # writes gpu_benchmark.md / .csv into OUT_DIR (figures/ in the repo)

Speeds only: the models learn nothing here (random inputs). The paper-scale times are extrapolations from the measured
rates and the annotation-only counts in figures/lnhg_counts.csv, labelled as such."""
import sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from fastai.callback.core import Callback
from fastai.callback.fp16 import MixedPrecision, AMPMode
from fastai.data.core import DataLoaders
from lungrepro.core import save_table, median_time
from lungrepro.lnhg import LNHGGenerator, LNHGCritic, lnhg_learner, lnhg_detector, generator_macs
from lungrepro.perceptual import VGGFeatures
from lungrepro.detection import detector_learner
from lungrepro.dsnet import dsnet_variant, SRGenerator, dsnet_learner, macs_per_crop

class TrainClock(Callback):
    "Wall time of each training phase (CUDA synchronised), validation excluded."
    order = 100
    def __init__(self): self.times = []
    def _sync(self):
        if torch.cuda.is_available(): torch.cuda.synchronize()
    def before_train(self): self._sync(); self.t0 = time.perf_counter()
    def after_train(self): self._sync(); self.times.append(time.perf_counter() - self.t0)

def train_rate(make_learn, n_items: int) -> tuple[float, str]:
    "Items/s of the second of two one-epoch fits (the first warms cuDNN and the allocator); and the precision used."
    clock = TrainClock(); learn = make_learn(); learn.add_cb(clock)
    learn.fit(1); learn.fit(1)
    mp = [c for c in learn.cbs if isinstance(c, MixedPrecision)]
    prec = 'float32' if not mp else 'bfloat16' if mp[0].amp_mode == AMPMode.BF16 else 'float16'
    return n_items / clock.times[-1], prec

class OneInput(list):
    "A list of (input, target, ...) tuples as a dataset whose first element alone is the input."
    n_inp = 1

def dls_of(train, valid, bs, dev): return DataLoaders.from_dsets(train, valid, bs=bs, device=dev, num_workers=0)

def main(out: Path, device: str = 'cuda', H: int = 256, base: int = 64, mm: int = 8192, batches: int = 8):
    "The table; `device='cpu'` with small `H`, `base`, `mm`, `batches` only checks that the script runs (nothing is saved then)."
    dev = torch.device(device); torch.backends.cudnn.benchmark = True
    gpu = torch.cuda.get_device_name(0) if dev.type == 'cuda' else 'CPU (check run)'
    A = torch.rand(mm, mm, device=dev, dtype=torch.bfloat16)
    mm_bf16 = mm ** 3 / median_time(lambda: A @ A, 1.0)          # MAC/s, the dense bf16 ceiling measured here
    rows = []
    # LNHG paper preset: 3×256² whole-slice volumes, full widths, batch 12, n_critic 5, MSE + VGG-19 (16th conv) + 0.1 adversarial
    bs, n = 12, 12 * batches
    vols = [(torch.rand(1, 3, H, H), torch.rand(1, 3, H, H)) for _ in range(n)]
    vgg = VGGFeatures()
    rate1, _ = train_rate(lambda: lnhg_learner(dls_of(vols, vols[:bs], bs, dev), LNHGGenerator(), LNHGCritic((3, H, H)), vgg.to(dev),
                                               n_critic=1), n)
    rate, prec = train_rate(lambda: lnhg_learner(dls_of(vols, vols[:bs], bs, dev), LNHGGenerator(), LNHGCritic((3, H, H)), vgg.to(dev),
                                                 n_critic=5), n)
    with torch.device('meta'): macs = generator_macs(LNHGGenerator(), (1, 1, 3, H, H))   # counted, not computed
    counts = pd.read_csv(Path(__file__).parents[1]/'figures'/'lnhg_counts.csv')
    n_vol = int(str(counts.loc[counts.rule.str.contains('≥ 1 annotator'), '3-slice volumes'].iloc[0]))
    rows.append(dict(paper='LNHG', what='training step: G + 5 critic steps (WGAN-GP) + VGG-19 loss, batch 12', precision=prec,
                     unit='volumes/s (3×256²)', value=rate, ceiling_share=3 * macs * rate / mm_bf16,
                     paper_scale=f"160 epochs × {n_vol} volumes ≈ {160 * n_vol / rate / 3600:.1f} h per fold (extrapolated)"))
    rows.append(dict(paper='LNHG', what='the same with n_critic = 1 (the demo setting)', precision=prec, unit='volumes/s (3×256²)',
                     value=rate1, ceiling_share=3 * macs * rate1 / mm_bf16, paper_scale=''))
    g = LNHGGenerator().to(dev).eval(); xb = torch.rand(bs, 1, 3, H, H, device=dev)
    with torch.inference_mode(), torch.autocast(dev.type, torch.bfloat16):
        t = median_time(lambda: g(xb), 1.0)
    rows.append(dict(paper='LNHG', what='generator whole-volume inference, batch 12', precision='bfloat16', unit='volumes/s (3×256²)',
                     value=bs / t, ceiling_share=macs * bs / t / mm_bf16, paper_scale=''))
    # Faster R-CNN paper preset: ResNet-18 C4, anchors 16/32/64 at 256², GIoU box losses, from scratch
    im = torch.rand(1, H, H); boxes = torch.full((8, 4), -1.0); boxes[0] = torch.tensor([100., 100., 112., 112.])
    dets = [(im, boxes, torch.zeros(())) for _ in range(8 * batches)]
    rate, prec = train_rate(lambda: detector_learner(dls_of(dets, dets[:8], 8, dev), lnhg_detector(H, trunk='C4'), 1e-5, clip=None,
                                                     one_cycle=False), len(dets))
    rows.append(dict(paper='LNHG', what='Faster R-CNN (ResNet-18 C4, GIoU) training step, batch 8', precision=prec, unit='images/s (256²)',
                     value=rate, ceiling_share=np.nan, paper_scale=''))
    det = lnhg_detector(H, trunk='C4').to(dev).eval(); ims = [torch.rand(3, H, H, device=dev) for _ in range(8)]
    with torch.inference_mode(): t = median_time(lambda: det(ims), 1.0)
    rows.append(dict(paper='LNHG', what='Faster R-CNN inference, batch 8', precision='float32', unit='images/s (256²)', value=8 / t,
                     ceiling_share=np.nan, paper_scale=''))
    # DSNet paper preset: 64² in, ×4 SR teacher (SRGAN, 64 ch, 16 blocks) to 256², CBAM U-Net widths from 64, depth 4, batch 1
    teacher = SRGenerator(4, base, 16).requires_grad_(False)
    for name, size in (('UNet', 256), ('+ GAN loss (DSNet)', 64)):
        for b in (1, 8):
            items = OneInput((torch.rand(1, size, size), (torch.rand(1, 256, 256) > 0.5).float(), torch.rand(1, 256, 256)) for _ in range(batches * b))
            def make(name=name, b=b, items=items):
                m, loss = dsnet_variant(name, teacher, base=base, depth=4)
                return dsnet_learner(dls_of(items, OneInput(items[:b]), b, dev), m, **loss)
            rate, prec = train_rate(make, len(items))
            with torch.device('meta'): mac = macs_per_crop(dsnet_variant(name, SRGenerator(4, base, 16), base=base, depth=4)[0], torch.rand(1, 1, size, size))
            m = dsnet_variant(name, teacher, base=base, depth=4)[0]
            rows.append(dict(paper='DSNet', what=f"{name} training step{' (S + pixel critic)' if 'GAN' in name else ''}, batch {b}", precision=prec,
                             unit=f'samples/s ({size}² in)', value=rate, ceiling_share=3 * mac * rate / mm_bf16,
                             paper_scale=f"60 epochs × 387 × 4 folds ≈ {60 * 387 * 4 / rate / 60:.0f} min (extrapolated)" if b == 1 else ''))
        m = m.to(dev).eval(); x1 = torch.rand(1, 1, size, size, device=dev)
        with torch.inference_mode(), torch.autocast(dev.type, torch.bfloat16): t = median_time(lambda: m(x1), 1.0)
        rows.append(dict(paper='DSNet', what=f'{name} inference, one crop', precision='bfloat16', unit='ms per crop', value=1e3 * t,
                         ceiling_share=mac / t / mm_bf16, paper_scale=''))
    df = pd.DataFrame(rows).round(4)
    print(df.to_string())
    if dev.type != 'cuda': return df
    save_table(df, 'gpu_benchmark', out, f'LNHG and DSNet at the paper presets on one {gpu}: training and inference throughput',
               source='synthetic inputs of the paper shapes (speed only)', scale='paper preset', folds='n/a', seed='n/a',
               notes=f"{gpu}, torch {torch.__version__}, CUDA {torch.version.cuda}, TF32 matmul {torch.backends.cuda.matmul.allow_tf32}, TF32 cuDNN {torch.backends.cudnn.allow_tf32}; dense bf16 matmul ceiling measured here "
                     f"{mm_bf16 / 1e12:.0f} TMAC/s (8192³). ceiling_share = the network's MACs per second (training ≈ 3 × forward) / that ceiling; for LNHG's training rows the generator's MACs only: the critic's steps, whose WGAN-GP penalty runs in float32 with autocast off, come on top (their cost is the gap between the n_critic = 5 and n_critic = 1 rows). "
                     "Training rates: the second one-epoch fit of the package's Learner (fastai; on CUDA it picks the precision), "
                     "validation excluded, CUDA synchronised. The random-feature VGG-19 (no ImageNet weights here) costs the same as "
                     "ImageNet's. Paper-scale times are extrapolations: rate × epochs × items, with LNHG's volume count from "
                     "lnhg_counts (≥ 50 % consensus, ≥ 1 annotator, all folds' volumes: an upper bound on one fold's training share) "
                     "and DSNet's 387 training images of the paper's split.")
    return df

if __name__ == '__main__': main(Path(sys.argv[1] if len(sys.argv) > 1 else 'figures'))
