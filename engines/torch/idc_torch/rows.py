"""The patch cache read by the engine itself: row numbers and augmentation draws come over the pipe,
pixels do not.

`<split>.u8` (count x 50 x 50 x 3 uint8, src/core/cache/format.ts) is memory-mapped and gathered per
batch, or held on a CUDA device whole when it fits; each patient's Macenko map (`<split>.stains.json`)
is applied as the TypeScript reader applies it, with its lookup tables (sent at open), so the rows
are bit-identical. Flips, rotation and HED stain jitter then run on the device, from the draws the
TypeScript side made (src/core/train/augment.ts, AUGMENT_PARAMS per patch).
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

S = 50
PIXELS = S * S
PATCH = PIXELS * 3
AUGMENT_PARAMS = 9
# A resident split may take this share of the device's free memory.
RESIDENT_SHARE = 0.4
# skimage's H&E-DAB colour deconvolution (src/core/train/stain.ts).
RGB_FROM_HED = torch.tensor([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=torch.float64)
LOG_ADJUST = math.log(1e-6)


class Unavailable(Exception):
    """The engine cannot read this cache (another machine, a moved folder): TypeScript sends pixels."""


def patient_of_id(row_id):
    i = row_id.find('_')
    return row_id if i < 0 else row_id[:i]


def stain_rows(cache_dir, name, key, count):
    """Per row, the index of its patient's OD matrix (-1: used as scanned), and the matrices (k x 9)."""
    path = os.path.join(cache_dir, f'{name}.stains.json')
    try:
        with open(path, encoding='utf8') as f:
            table = json.load(f)
        with open(os.path.join(cache_dir, f'{name}.ids.json'), encoding='utf8') as f:
            ids = json.load(f)
    except (OSError, ValueError) as e:
        raise Unavailable(f'cannot read {name} stains: {e}') from e
    if table.get('key') != key or table.get('method') != 'macenko':
        raise Unavailable(f'{path} belongs to other rows')
    if len(ids) != count:
        raise Unavailable(f'{name}.ids.json has {len(ids)} ids for {count} patches')
    index, matrices = {}, []
    for p, e in table['patients'].items():
        if 'matrix' in e:
            index[p] = len(matrices)
            matrices.append(e['matrix'])
    rows = np.array([index.get(patient_of_id(i), -1) for i in ids], dtype=np.int64)
    return torch.from_numpy(rows), torch.tensor(matrices, dtype=torch.float64).reshape(-1, 9)


def normalize(x, which, matrices, od_lut, exp_lut):
    """Macenko maps on uint8 rows (m x PATCH), in place: OD' = T·OD, then the TypeScript reader's
    quantized exp (applyOdMatrix in src/core/cache/stain-norm.ts), with the same float64 operations
    in the same order (in-place adds round as JavaScript's do), so the bytes are the same."""
    sel = which >= 0
    if not bool(sel.any()):
        return x
    # Channels first: each channel's OD is then contiguous, which the elementwise ops run faster on.
    od = od_lut[x[sel].view(-1, PIXELS, 3).transpose(1, 2).long()]
    t = matrices[which[sel]]
    top = exp_lut.numel() - 1
    out = torch.empty(od.shape, dtype=torch.uint8, device=x.device)
    for r in range(3):
        v = od[:, 0] * t[:, 3 * r, None]
        v.add_(od[:, 1] * t[:, 3 * r + 1, None]).add_(od[:, 2] * t[:, 3 * r + 2, None])
        # JavaScript: od > 0 ? min((od * 1024 + 0.5) | 0, top) : 0; below 0 the floor is <= 0 and clamps to 0.
        out[:, r] = exp_lut[v.mul_(1024).add_(0.5).floor_().clamp_(0, top).long()]
    x[sel] = out.transpose(1, 2).reshape(-1, PATCH)
    return x


def wants_resident(device, size):
    """A CUDA device holds a split that fits; IDC_TORCH_RESIDENT=1 forces it anywhere (tests on CPU)."""
    if os.environ.get('IDC_TORCH_RESIDENT') == '1':
        return True
    if device.type != 'cuda':
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return size <= RESIDENT_SHARE * free


class SplitRows:
    """One split of the cache as this rank reads it."""

    def __init__(self, spec, luts, device):
        self.name, cache_dir, count = spec['name'], spec['cacheDir'], int(spec['count'])
        path = os.path.join(cache_dir, f'{self.name}.u8')
        try:
            size = os.path.getsize(path)
        except OSError as e:
            raise Unavailable(f'cannot open {path}: {e.strerror}') from e
        if size != count * PATCH:
            raise Unavailable(f'{path} holds {size / PATCH:g} patches, expected {count}')
        self.count, self.device = count, device
        self.mm = np.memmap(path, dtype=np.uint8, mode='r', shape=(count, PATCH)) if count else None
        self.which = self.matrices = None
        if spec.get('stains'):
            self.which, self.matrices = stain_rows(cache_dir, self.name, spec['key'], count)
        self.od_lut, self.exp_lut = luts
        self.resident = None
        if count and wants_resident(device, size):
            self.resident = self._load_resident()

    def _load_resident(self):
        """The whole split on the GPU, normalized once, in chunks (float64 maps there too)."""
        dev = self.device
        out = torch.empty((self.count, PATCH), dtype=torch.uint8, device=dev)
        luts = (self.od_lut.to(dev), self.exp_lut.to(dev))
        mats = self.matrices.to(dev) if self.matrices is not None else None
        step = 8192
        for lo in range(0, self.count, step):
            hi = min(lo + step, self.count)
            # A copy: the map is read-only and normalize writes in place.
            chunk = torch.from_numpy(np.array(self.mm[lo:hi])).to(dev)
            if mats is not None:
                chunk = normalize(chunk, self.which[lo:hi].to(dev), mats, *luts)
            out[lo:hi] = chunk
        return out

    def read(self, idx):
        """Rows idx (a CPU int64 tensor) as n x 50 x 50 x 3 uint8 on the device, normalized."""
        n = idx.numel()
        if n and (int(idx.min()) < 0 or int(idx.max()) >= self.count):
            raise IndexError(f'{self.name} row out of range [0, {self.count})')
        if self.resident is not None:
            return self.resident[idx.to(self.device)].view(n, S, S, 3)
        x = torch.from_numpy(self.mm[idx.numpy()])
        if self.matrices is not None:
            x = normalize(x, self.which[idx], self.matrices, self.od_lut, self.exp_lut)
        x = x.view(n, S, S, 3)
        return x.pin_memory().to(self.device, non_blocking=True) if self.device.type == 'cuda' else x.to(self.device)


def geometry(x, p):
    """Flips, then rotation by the drawn angle (bilinear, reflect fill), into float32 in [0, 1].

    augment.ts maps each output pixel back into the source and mirrors out-of-range neighbours as
    Keras' fill_mode='reflect' does (d c b a | a b c d); grid_sample's reflection padding with
    align_corners=False mirrors about the same edges, so it computes the same bilinear values."""
    n = x.shape[0]
    dev = x.device
    c = (S - 1) / 2
    grid = torch.arange(S, dtype=torch.float32, device=dev) - c
    cos, sin = torch.cos(p[:, 2]).view(n, 1, 1), torch.sin(p[:, 2]).view(n, 1, 1)
    dx, dy = grid.view(1, 1, S), grid.view(1, S, 1)
    sx = cos * dx + sin * dy + c
    sy = -sin * dx + cos * dy + c
    sx = torch.where(p[:, 0].view(n, 1, 1) == 1, S - 1 - sx, sx)
    sy = torch.where(p[:, 1].view(n, 1, 1) == 1, S - 1 - sy, sy)
    # Pixel centres to grid_sample's [-1, 1] (align_corners=False: -1 and 1 are the outer edges).
    g = torch.stack([(2 * sx + 1) / S - 1, (2 * sy + 1) / S - 1], -1)
    img = x.permute(0, 3, 1, 2).float()
    out = F.grid_sample(img, g, mode='bilinear', padding_mode='reflection', align_corners=False)
    return (out / 255).permute(0, 2, 3, 1)


def stain_jitter(px, p):
    """HED scale and shift per patch (stainJitterPatch in src/core/train/stain.ts), on float RGB."""
    n = px.shape[0]
    r = RGB_FROM_HED
    # The n small matrices in float64 on the CPU (MPS has no float64), as stain.ts folds them.
    alpha, beta = p[:, 3:6].cpu().double(), p[:, 6:9].cpu().double()
    m = (torch.linalg.inv(r).unsqueeze(0) * alpha.unsqueeze(1)) @ r  # H·diag(α)·R
    b = -LOG_ADJUST * (beta @ r)
    od = -torch.log(px.reshape(n, PIXELS, 3).clamp_min(1e-6))
    out = torch.exp(-(od @ m.float().to(px.device) + b.float().unsqueeze(1).to(px.device))).clamp_(0, 1)
    return out.view(n, S, S, 3)


def to_float(x, params=None, geo=False, stain=False):
    """uint8 NHWC on the device to the float32 batch the model trains on."""
    if params is None or not (geo or stain):
        return x.float() / 255
    params = params.to(x.device)
    out = geometry(x, params) if geo else x.float() / 255
    return stain_jitter(out, params) if stain else out


class Rows:
    """The splits this rank opened; a step names its split and rows."""

    def __init__(self, h, device):
        luts = (torch.tensor(h['odLut'], dtype=torch.float64), torch.tensor(h['expLut'], dtype=torch.uint8))
        self.splits = {s['name']: SplitRows(s, luts, device) for s in h['splits']}

    def describe(self):
        where = {n: ('resident' if s.resident is not None else 'memory-mapped') for n, s in self.splits.items()}
        return {'rows': where}

    def batch(self, h, idx, params=None):
        """The rows a command names (h: split, geometry, stain), as the model takes them."""
        s = self.splits.get(h['split'])
        if s is None:
            raise ValueError(f'the {h["split"]} split was not opened')
        return to_float(s.read(idx), params, bool(h.get('geometry')), bool(h.get('stain')))
