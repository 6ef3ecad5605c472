"""IDC Inspector's PyTorch engine: one model replica behind the TypeScript Trainer interface.

The TypeScript side owns the job (data order, augmentation, metrics, callbacks, checkpoints); this
process owns the tensors. Messages on stdin/stdout, both ways: a little-endian uint32 header length,
a JSON header, then header['nbytes'] bytes of raw float32 payload. Errors are answered, not raised;
end of stdin (the parent is gone) ends the process.
"""
import json
import os
import struct
import sys
import traceback

# stdout carries frames only: keep a private copy of it and send stray prints to stderr.
_OUT = os.fdopen(os.dup(1), 'wb')
os.dup2(2, 1)
sys.stdout = sys.stderr
_IN = sys.stdin.buffer

import torch  # noqa: E402  (after the stdout swap: import-time prints must not corrupt frames)

from .model import IdcNet, TfjsAdam, batch_loss, from_tf, tf_shape, to_tf  # noqa: E402

PATCH = 50 * 50 * 3


def read_exact(n, buf=None):
    buf = buf if buf is not None and len(buf) >= n else bytearray(n)
    view, got = memoryview(buf)[:n], 0
    while got < n:
        k = _IN.readinto(view[got:])
        if not k:
            raise EOFError
        got += k
    return buf


def send(header, payload=()):
    """payload: float32 tensors, concatenated in order."""
    arrays = [t.detach().to('cpu', torch.float32).contiguous().numpy() for t in payload]
    header['nbytes'] = sum(a.nbytes for a in arrays)
    h = json.dumps(header).encode()
    _OUT.write(struct.pack('<I', len(h)) + h)
    for a in arrays:
        _OUT.write(memoryview(a).cast('B'))
    _OUT.flush()


def step_seed(seed, step):
    """A 63-bit seed per (run seed, global step), splitmix64-style: a fresh, reproducible dropout mask per step."""
    z = (seed * 0x9E3779B97F4A7C15 + (step + 1) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFF


def pick_device(wanted):
    if wanted:
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device('cuda')
    mps = getattr(torch.backends, 'mps', None)
    if mps is not None and mps.is_available():
        return torch.device('mps')
    return torch.device('cpu')


class Engine:
    def __init__(self, h):
        m = h['model']
        if h.get('threads'):
            torch.set_num_threads(int(h['threads']))
        self.device = pick_device(h.get('device'))
        self.net = IdcNet(m['filters'], m['dense'], m['dropout'], m['l2'], m['bnMomentum']).to(self.device)
        self.seed = int(m.get('seed') or 0)
        trainable, buffers = self.net.tf_slots()
        self.slots = trainable + buffers
        self.trainable = trainable
        mine = [{'name': n, 'shape': tf_shape(t, lay)} for n, t, lay in self.slots]
        theirs = [{'name': s['name'], 'shape': list(s['shape'])} for s in h['specs']]
        if mine != theirs:
            raise ValueError(f'weight layout differs from the TypeScript model: {mine} vs {theirs}')
        self.opt = TfjsAdam([t for _, t, _ in trainable], h['lr'])
        loss = h['loss']
        self.loss = (loss['kind'], float(loss['gamma']), loss.get('classWeights'))
        self.step = 0
        self.xbuf = None

    def info(self):
        return {'python': sys.executable, 'pythonVersion': sys.version.split()[0], 'torch': torch.__version__,
                'device': str(self.device), 'threads': torch.get_num_threads()}

    def floats(self, n):
        self.xbuf = read_exact(n * 4, self.xbuf)
        return torch.frombuffer(self.xbuf, dtype=torch.float32, count=n)

    def train(self, h, payload):
        n = h['n']
        x = payload[:n * PATCH].reshape(n, 50, 50, 3).to(self.device)
        y = payload[n * PATCH:n * PATCH + n].to(self.device)
        step = h.get('step')
        self.step = self.step if step is None else int(step)
        gen = None
        if self.net.rate > 0:
            gen = torch.Generator(device=self.device)
            gen.manual_seed(step_seed(self.seed, self.step))
        self.step += 1
        self.net.train()
        for p in self.opt.params:
            p.grad = None
        p = self.net(x, gen)
        kind, gamma, cw = self.loss
        total = batch_loss(y, p, kind, gamma, cw) + self.net.regularization()
        total.backward()
        self.opt.step()
        send({'loss': float(total)}, [p])

    @torch.no_grad()
    def predict(self, h, payload):
        n = h['n']
        self.net.eval()
        send({}, [self.net(payload[:n * PATCH].reshape(n, 50, 50, 3).to(self.device))])

    def get_weights(self):
        send({}, [to_tf(t, lay) for _, t, lay in self.slots])

    @torch.no_grad()
    def set_weights(self, payload):
        at = 0
        for _, t, lay in self.slots:
            k = t.numel()
            t.copy_(from_tf(payload[at:at + k], t, lay))
            at += k

    def optimizer_specs(self):
        """tfjs' Adam getWeights order: iter, every first moment, every second moment; then its β powers."""
        specs = [{'name': 'iter', 'shape': []}]
        specs += [{'name': f'{n}/m', 'shape': tf_shape(t, lay)} for n, t, lay in self.trainable]
        specs += [{'name': f'{n}/v', 'shape': tf_shape(t, lay)} for n, t, lay in self.trainable]
        return specs + [{'name': 'adam/accBeta1', 'shape': []}, {'name': 'adam/accBeta2', 'shape': []}]

    def get_optimizer(self):
        lays = [lay for _, _, lay in self.trainable]
        o = self.opt
        data = [torch.tensor([float(o.iterations)])] + [to_tf(m, lay) for m, lay in zip(o.m, lays)]
        data += [to_tf(v, lay) for v, lay in zip(o.v, lays)] + [o.acc1.reshape(1), o.acc2.reshape(1)]
        send({'specs': self.optimizer_specs()}, data)

    @torch.no_grad()
    def set_optimizer(self, h, payload):
        specs = h['specs']
        sizes = [max(1, int(torch.tensor(s['shape']).prod())) if s['shape'] else 1 for s in specs]
        parts, at = [], 0
        for k in sizes:
            parts.append(payload[at:at + k])
            at += k
        named = dict(zip([s['name'] for s in specs], parts))
        slots = [p for s, p in zip(specs, parts) if s['name'] not in ('adam/accBeta1', 'adam/accBeta2')]
        o, count = self.opt, len(self.trainable)
        if len(slots) != 1 + 2 * count:
            raise ValueError(f'optimizer state has {len(slots)} slots; this model needs {1 + 2 * count}')
        o.iterations = int(slots[0][0])
        for i, (_, t, lay) in enumerate(self.trainable):
            o.m[i].copy_(from_tf(slots[1 + i], t, lay))
            o.v[i].copy_(from_tf(slots[1 + count + i], t, lay))
        # Older checkpoints lack the powers: recompute them as tfjs' setWeights does.
        o.acc1 = named['adam/accBeta1'][:1].clone().reshape(()) if 'adam/accBeta1' in named else torch.tensor(o.b1 ** (o.iterations + 1), dtype=torch.float32)
        o.acc2 = named['adam/accBeta2'][:1].clone().reshape(()) if 'adam/accBeta2' in named else torch.tensor(o.b2 ** (o.iterations + 1), dtype=torch.float32)


def main():
    engine = None
    while True:
        try:
            (size,) = struct.unpack('<I', read_exact(4))
            h = json.loads(read_exact(size).decode())
        except EOFError:
            return
        op = h.get('op')
        try:
            nbytes = int(h.get('nbytes', 0))
            payload = engine.floats(nbytes // 4) if engine is not None and nbytes else (torch.frombuffer(read_exact(nbytes), dtype=torch.float32) if nbytes else None)
            if op == 'init':
                engine = Engine(h)
                send(engine.info())
            elif op == 'exit':
                send({})
                return
            elif engine is None:
                raise RuntimeError(f'"{op}" before "init"')
            elif op == 'train':
                engine.train(h, payload)
            elif op == 'predict':
                engine.predict(h, payload)
            elif op == 'getWeights':
                engine.get_weights()
            elif op == 'setWeights':
                engine.set_weights(payload)
                send({})
            elif op == 'getOptimizerState':
                engine.get_optimizer()
            elif op == 'setOptimizerState':
                engine.set_optimizer(h, payload)
                send({})
            elif op == 'setLearningRate':
                engine.opt.lr = float(h['lr'])
                send({})
            elif op == 'regularizationLoss':
                with torch.no_grad():
                    send({'value': float(engine.net.regularization())})
            else:
                raise ValueError(f'unknown op "{op}"')
        except EOFError:
            return
        except Exception as e:  # answered: the TypeScript side decides what fails
            send({'error': f'{type(e).__name__}: {e}', 'traceback': traceback.format_exc()[-4000:]})


if __name__ == '__main__':
    main()
