"""IDC Inspector's PyTorch engine: one model replica behind the TypeScript Trainer interface.

The TypeScript side owns the job (data order, augmentation, metrics, callbacks, checkpoints); this
process owns the tensors. Messages on stdin/stdout, both ways: a little-endian uint32 header length,
a JSON header, then header['nbytes'] bytes of raw float32 payload. Errors are answered, not raised;
end of stdin (the parent is gone) ends the process.

Started by torchrun with several processes, rank 0 is that process and the others follow it
(dist.py); a failed command that reached the other ranks ends every rank, since they may no longer
agree on which collective comes next.
"""
import json
import math
import os
import signal
import struct
import sys
import traceback

# Ctrl+C in a terminal, or a SIGTERM to the job's process group, reaches this process (and every
# torchrun rank) too: the TypeScript parent alone decides to stop, then ends us with 'exit' or by
# closing stdin (or SIGKILL when we do not answer).
signal.signal(signal.SIGINT, signal.SIG_IGN)
# Under torchrun (its own process group, out of a terminal's reach) SIGTERM is how torchrun stops
# the other ranks when one fails: keep its default there.
if 'TORCHELASTIC_RUN_ID' not in os.environ:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

# stdout carries frames only: keep a private copy of it and send stray prints to stderr.
_OUT = os.fdopen(os.dup(1), 'wb')
os.dup2(2, 1)
sys.stdout = sys.stderr
_IN = sys.stdin.buffer

import torch  # noqa: E402  (after the stdout swap: import-time prints must not corrupt frames)

from . import dist as ddp  # noqa: E402
from .model import IdcNet, TfjsAdam, batch_loss, from_tf, tf_shape, to_tf  # noqa: E402
from .rows import AUGMENT_PARAMS, Rows, Unavailable  # noqa: E402

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
    # JSON has no NaN or Infinity (JSON.parse refuses them): a diverged loss travels as 'nan', 'inf' or '-inf'.
    header = {k: repr(v) if isinstance(v, float) and not math.isfinite(v) else v for k, v in header.items()}
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
    def __init__(self, h, comm=None):
        m = h['model']
        self.comm = comm
        threads = int(h.get('threads') or 0)
        if comm is not None:
            comm.setup(h)
            # Node 0's budget is engine.threads; another machine's is its cores; its processes share it.
            base = threads if comm.node == 0 and threads else (os.cpu_count() or 1)
            threads = max(1, base // comm.local_world)
        if threads:
            torch.set_num_threads(threads)
        self.device = comm.device if comm is not None else pick_device(h.get('device'))
        self.net = IdcNet(m['filters'], m['dense'], m['dropout'], m['l2'], m['bnMomentum']).to(self.device)
        if comm is not None:
            for bn in self.net.batch_norms():
                bn.sync = comm
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
        self.rows = None
        self.ranks = comm.all_gather_object(comm.whoami(self.device)) if comm is not None else None

    def info(self):
        i = {'python': sys.executable, 'pythonVersion': sys.version.split()[0], 'torch': torch.__version__,
             'device': str(self.device), 'threads': torch.get_num_threads()}
        if self.comm is not None:
            c = self.comm
            i.update(processes=c.world, nodes=c.nodes, backend=c.backend, ranks=self.ranks,
                     device=self.device.type)
        return i

    def floats(self, n):
        self.xbuf = read_exact(n * 4, self.xbuf)
        return torch.frombuffer(self.xbuf, dtype=torch.float32, count=n)

    def train(self, h, payload):
        n = h['n']
        lo, hi = self.comm.shard(n) if self.comm is not None else (0, n)
        x = payload[lo * PATCH:hi * PATCH].reshape(hi - lo, 50, 50, 3).to(self.device)
        return self._step(h, x, payload[n * PATCH + lo:n * PATCH + hi].to(self.device), n, lo, hi)

    def train_rows(self, h, payload):
        """A step on cache rows: payload is the n row numbers, n labels, then n x AUGMENT_PARAMS draws."""
        n = h['n']
        lo, hi = self.comm.shard(n) if self.comm is not None else (0, n)
        idx = payload[lo:hi].to('cpu', torch.int64)
        params = payload[2 * n:2 * n + n * AUGMENT_PARAMS].view(n, AUGMENT_PARAMS)[lo:hi]
        x = self.open_rows().batch(h, idx, params)
        return self._step(h, x, payload[n + lo:n + hi].to(self.device), n, lo, hi)

    def _step(self, h, x, y, n, lo, hi):
        comm = self.comm
        if h.get('bnCount'):
            # Not a step: no dropout, and the step counter stays (as TF.js's StepDropout's does).
            return self._bn_stats(x, int(h['bnCount']), (lo, hi, n) if comm is not None else None)
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
        kind, gamma, cw = self.loss
        if comm is None:
            p = self.net(x, gen)
            total = batch_loss(y, p, kind, gamma, cw) + self.net.regularization()
            total.backward()
            self.opt.step()
            return {'loss': float(total)}, [p]
        p = self.net(x, gen, (lo, hi, n))
        data = batch_loss(y, p, kind, gamma, cw, n)
        reg = self.net.regularization()
        # The L2 term on rank 0 only: summed over ranks, its gradient then counts once.
        (data + reg if comm.rank == 0 else data).backward()
        comm.all_reduce_grads(self.opt.params)
        self.opt.step()
        loss, probs = comm.gather_outputs(data.detach(), p.detach(), n)
        if comm.rank != 0:
            return None
        return {'loss': float(torch.tensor(loss, dtype=torch.float32) + reg.detach().cpu())}, [probs]

    @torch.no_grad()
    def _bn_stats(self, x, count, rows):
        """Precise BN (Trainer.accumulateBatchNorm): a training-mode pass, dropout off as at
        inference, whose batch statistics enter the moving ones with weight 1/count; no weight or
        optimizer state changes."""
        bns = self.net.batch_norms()
        kept, rate = [bn.momentum for bn in bns], self.net.rate
        for bn in bns:
            bn.momentum = 1 - 1 / count
        self.net.rate = 0
        self.net.train()
        try:
            self.net(x, None, rows)
        finally:
            self.net.rate = rate
            for bn, m in zip(bns, kept):
                bn.momentum = m
        if self.comm is not None and self.comm.rank != 0:
            return None
        return {}, []

    def open_rows(self):
        if self.rows is None:
            raise RuntimeError('no cache split is open (openRows)')
        return self.rows

    def open_cache(self, h):
        """openRows: every rank maps the splits; any that cannot leaves all of them on pixels over the pipe."""
        try:
            rows, reason = Rows(h, self.device), None
        except (Unavailable, OSError, ValueError, KeyError) as e:
            rows, reason = None, f'{type(e).__name__}: {e}' if not isinstance(e, Unavailable) else str(e)
        if self.comm is not None:
            reasons = self.comm.all_gather_object(reason)
            bad = [(r, why) for r, why in enumerate(reasons) if why]
            if bad:
                rows, reason = None, '; '.join(f'rank {r}: {why}' for r, why in bad)
        self.rows = rows
        return ({'ok': True, **rows.describe()} if rows else {'ok': False, 'reason': reason}), []

    @torch.no_grad()
    def predict_rows(self, h, payload):
        n = h['n']
        self.net.eval()
        return {}, [self.net(self.open_rows().batch(h, payload[:n].to('cpu', torch.int64)))]

    @torch.no_grad()
    def row_pixels(self, h, payload):
        """The float batch a trainRows step would train on (tests compare it with TypeScript's)."""
        n = h['n']
        params = payload[n:n + n * AUGMENT_PARAMS].view(n, AUGMENT_PARAMS) if payload.numel() > n else None
        return {}, [self.open_rows().batch(h, payload[:n].to('cpu', torch.int64), params)]

    @torch.no_grad()
    def predict(self, h, payload):
        n = h['n']
        self.net.eval()
        return {}, [self.net(payload[:n * PATCH].reshape(n, 50, 50, 3).to(self.device))]

    def get_weights(self):
        return {}, [to_tf(t, lay) for _, t, lay in self.slots]

    @torch.no_grad()
    def set_weights(self, payload):
        at = 0
        for _, t, lay in self.slots:
            k = t.numel()
            t.copy_(from_tf(payload[at:at + k], t, lay))
            at += k
        return {}, []

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
        return {'specs': self.optimizer_specs()}, data

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
        return {}, []

    def checksums(self):
        """One digest per rank of its weights, moving statistics and Adam state, in rank order."""
        o = self.opt
        mine = ddp.checksum([t for _, t, _ in self.slots] + o.m + o.v
                            + [torch.tensor([float(o.iterations)]), o.acc1.reshape(1), o.acc2.reshape(1)])
        return {'checksums': self.comm.all_gather_object(mine) if self.comm is not None else [mine]}, []


def dispatch(engine, op, h, payload):
    """Runs one command on this rank; returns (header, tensors) to answer, None on ranks other than 0."""
    if op == 'train':
        return engine.train(h, payload)
    if op == 'predict':
        return engine.predict(h, payload)
    if op == 'trainRows':
        return engine.train_rows(h, payload)
    if op == 'predictRows':
        return engine.predict_rows(h, payload)
    if op == 'openRows':
        return engine.open_cache(h)
    if op == 'rowPixels':
        return engine.row_pixels(h, payload)
    if op == 'getWeights':
        return engine.get_weights()
    if op == 'setWeights':
        return engine.set_weights(payload)
    if op == 'getOptimizerState':
        return engine.get_optimizer()
    if op == 'setOptimizerState':
        return engine.set_optimizer(h, payload)
    if op == 'setLearningRate':
        engine.opt.lr = float(h['lr'])
        return {}, []
    if op == 'regularizationLoss':
        with torch.no_grad():
            return {'value': float(engine.net.regularization())}, []
    if op == 'checksums':
        return engine.checksums()
    raise ValueError(f'unknown op "{op}"')


def error_reply(e):
    return {'error': f'{type(e).__name__}: {e}', 'traceback': traceback.format_exc()[-4000:]}


def peer_lost(e):
    while e is not None:
        if isinstance(e, ddp.PeerLost):
            return True
        e = e.__cause__ or e.__context__
    return False


def die(comm, op, e):
    """Ends this rank after a failed command that every rank ran: they may disagree on what comes next."""
    if peer_lost(e):
        ddp.say(comm.rank, f'lost the other processes during {op} ({e})')
        os._exit(ddp.PEER_LOST)
    ddp.say(comm.rank, f'{op} failed: {type(e).__name__}: {e}')
    traceback.print_exc()
    sys.stderr.flush()
    os._exit(1)


def follow(comm):
    """A rank other than 0: runs rank 0's commands on its share until rank 0 says exit."""
    engine, op = None, 'init'
    try:
        while True:
            h, payload = comm.recv_command()
            op = h.get('op')
            if op == 'exit':
                return
            if op == 'init':
                engine = Engine(h, comm)
            else:
                dispatch(engine, op, h, payload)
    except Exception as e:
        die(comm, op, e)


def main():
    comm = ddp.from_env()
    if comm is not None and comm.rank != 0:
        return follow(comm)
    engine = None
    while True:
        try:
            (size,) = struct.unpack('<I', read_exact(4))
            h = json.loads(read_exact(size).decode())
        except EOFError:
            # The parent is gone: take the other ranks along.
            if comm is not None:
                try:
                    comm.send_command({'op': 'exit'}, None)
                except ddp.PeerLost:
                    pass
            return
        op = h.get('op')
        shared = comm is not None and op in ddp.BROADCAST and (engine is not None or op in ('init', 'exit'))
        try:
            nbytes = int(h.get('nbytes', 0))
            payload = engine.floats(nbytes // 4) if engine is not None and nbytes else (torch.frombuffer(read_exact(nbytes), dtype=torch.float32) if nbytes else None)
            if shared:
                if op == 'init':
                    # One choice for all ranks: NCCL needs every rank on a GPU.
                    cuda = h.get('device') in (None, '', 'cuda') and torch.cuda.is_available()
                    h['backend'] = 'nccl' if cuda else 'gloo'
                comm.send_command(h, payload)
            if op == 'init':
                engine = Engine(h, comm)
                send(engine.info())
            elif op == 'exit':
                send({})
                return
            elif engine is None:
                raise RuntimeError(f'"{op}" before "init"')
            else:
                send(*dispatch(engine, op, h, payload))
        except EOFError:
            return
        except Exception as e:  # answered: the TypeScript side decides what fails
            if shared and peer_lost(e):
                die(comm, op, e)
            send(error_reply(e))
            if shared:
                die(comm, op, e)


if __name__ == '__main__':
    main()
