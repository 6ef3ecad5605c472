"""Data-parallel training across torchrun processes (python -m torch.distributed.run ... -m idc_torch).

Rank 0 alone talks to TypeScript and forwards each command that changes the model to the other
ranks; every rank trains on its rows of the batch. The step equals one process on the whole batch:
batch norm takes its statistics over all ranks' rows (SyncKerasBatchNorm), each rank's loss is its
rows' sum over the whole batch size, and the gradients are summed, so every rank applies the same
Adam step and the replicas stay identical.
"""
import datetime
import hashlib
import os
import socket
import sys

import torch
import torch.distributed as dist

# Exit code of a rank that lost its peers: the one that died first is the cause to report.
PEER_LOST = 3

# Commands every rank runs; the others (predict, getWeights, ...) read rank 0's identical replica.
BROADCAST = frozenset({'init', 'train', 'trainRows', 'openRows', 'setWeights', 'setOptimizerState', 'setLearningRate', 'checksums', 'exit'})


class PeerLost(RuntimeError):
    """A collective failed: another rank died, hung past the timeout, or the network broke."""


def from_env():
    """The torchrun context, or None when this is one process (no torchrun, or a world of 1)."""
    if int(os.environ.get('WORLD_SIZE', '1')) <= 1 or 'RANK' not in os.environ:
        return None
    return Comm()


class Comm:
    def __init__(self):
        env = os.environ
        self.rank, self.world = int(env['RANK']), int(env['WORLD_SIZE'])
        self.local_rank, self.local_world = int(env.get('LOCAL_RANK', 0)), int(env.get('LOCAL_WORLD_SIZE', 1))
        self.node, self.nodes = int(env.get('GROUP_RANK', 0)), int(env.get('GROUP_WORLD_SIZE', 1))
        # Commands travel on a gloo group with no practical timeout: between two commands the
        # other ranks wait while rank 0 validates and writes checkpoints, however long that takes.
        dist.init_process_group('gloo', timeout=datetime.timedelta(days=7))
        self.group = None
        self.device = torch.device('cpu')
        self.backend = 'gloo'

    def setup(self, h):
        """After init: the device and the group that carries batches and gradients, with the step timeout."""
        self.backend = h['backend']
        if self.backend == 'nccl':
            if not torch.cuda.is_available() or self.local_rank >= torch.cuda.device_count():
                raise RuntimeError(f'rank {self.rank} on {socket.gethostname()} needs GPU {self.local_rank} for NCCL, '
                                   f'but torch sees {torch.cuda.device_count() if torch.cuda.is_available() else 0} GPU(s): '
                                   'set engine.torch.processes to the number of GPUs of each machine')
            self.device = torch.device('cuda', self.local_rank)
            torch.cuda.set_device(self.device)
        timeout = datetime.timedelta(seconds=float(h.get('timeout') or 300))
        self.group = self._call(dist.new_group, backend=self.backend, timeout=timeout)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # gloo/NCCL raise RuntimeError for a peer that is gone or too slow
            raise PeerLost(f'{type(e).__name__}: {e}') from e

    def shard(self, n):
        """This rank's rows [lo, hi) of an n-row batch: sizes differ by at most one."""
        return self.rank * n // self.world, (self.rank + 1) * n // self.world

    def send_command(self, h, payload):
        """Rank 0: the command header to every rank, then its payload."""
        self._call(dist.broadcast_object_list, [h], src=0)
        if payload is not None and payload.numel():
            self._call(dist.broadcast, payload.to(self.device), 0, group=self.group)

    def recv_command(self):
        box = [None]
        self._call(dist.broadcast_object_list, box, src=0)
        h = box[0]
        n = int(h.get('nbytes', 0)) // 4
        payload = None
        if n:
            payload = torch.empty(n, dtype=torch.float32, device=self.device)
            self._call(dist.broadcast, payload, 0, group=self.group)
        return h, payload

    def all_reduce(self, t):
        """Sum over ranks, in place; returns t."""
        self._call(dist.all_reduce, t, group=self.group)
        return t

    def all_reduce_grads(self, params):
        """Sums every gradient over ranks in one flat all-reduce (the model is small: one bucket)."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = self.all_reduce(torch.cat([g.reshape(-1) for g in grads]))
        at = 0
        for p, g in zip(params, grads):
            k = g.numel()
            p.grad = flat[at:at + k].view_as(p)
            at += k

    def gather_outputs(self, data_loss, probs, n):
        """Rank 0 gets every rank's probabilities in row order and the summed data loss."""
        m = -(-n // self.world)
        mine = torch.zeros(m + 1, dtype=torch.float32, device=self.device)
        mine[:probs.numel()] = probs
        mine[m] = data_loss
        parts = [torch.empty_like(mine) for _ in range(self.world)]
        self._call(dist.all_gather, parts, mine, group=self.group)
        if self.rank != 0:
            return None, None
        sizes = [(r + 1) * n // self.world - r * n // self.world for r in range(self.world)]
        return sum(float(p[m]) for p in parts), torch.cat([p[:k] for p, k in zip(parts, sizes)])

    def all_gather_object(self, obj):
        out = [None] * self.world
        self._call(dist.all_gather_object, out, obj)
        return out

    def whoami(self, device):
        return {'rank': self.rank, 'node': self.node, 'host': socket.gethostname(), 'pid': os.getpid(), 'device': str(device)}


def checksum(tensors):
    """sha256 of the exact bytes: equal on two ranks only when their replicas are bit-identical."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().to('cpu', torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def say(rank, text):
    """One line on stderr that the TypeScript side quotes in its error."""
    sys.stderr.write(f'idc_torch rank {rank}: {text}\n')
    sys.stderr.flush()


class SyncKerasBatchNorm(torch.autograd.Function):
    """Keras batch norm (biased variance) over the rows of every rank. Forward all-reduces the
    per-channel sum, sum of squares and count (in float64); backward all-reduces the two sums the
    input gradient needs. gamma/beta gradients stay per rank: the gradient all-reduce sums them."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps, comm):
        dims = [0] + list(range(2, x.dim()))
        c = x.shape[1]
        local = torch.cat([x.sum(dims, dtype=torch.float64), (x * x).sum(dims, dtype=torch.float64),
                           torch.tensor([x.numel() / c], dtype=torch.float64, device=x.device)])
        tot = comm.all_reduce(local)
        count = tot[2 * c]
        mean = tot[:c] / count
        var = (tot[c:2 * c] / count - mean * mean).clamp_min(0)
        invstd = (var + eps).rsqrt().float()
        shape = [1, c] + [1] * (x.dim() - 2)
        xhat = (x - mean.float().view(shape)) * invstd.view(shape)
        ctx.save_for_backward(xhat, weight, invstd)
        ctx.count, ctx.comm, ctx.dims = count, comm, dims
        mean, var = mean.float(), var.float()
        ctx.mark_non_differentiable(mean, var)
        return xhat * weight.view(shape) + bias.view(shape), mean, var

    @staticmethod
    def backward(ctx, dy, _mean, _var):
        xhat, weight, invstd = ctx.saved_tensors
        c, dims = xhat.shape[1], ctx.dims
        dy = dy.contiguous()
        local = torch.cat([dy.sum(dims, dtype=torch.float64), (dy * xhat).sum(dims, dtype=torch.float64)])
        grad_bias, grad_weight = local[:c].float(), local[c:].float()
        tot = ctx.comm.all_reduce(local.clone())
        shape = [1, c] + [1] * (xhat.dim() - 2)
        mdy = (tot[:c] / ctx.count).float().view(shape)
        mdyx = (tot[c:] / ctx.count).float().view(shape)
        dx = (weight * invstd).view(shape) * (dy - mdy - xhat * mdyx)
        return dx, grad_weight, grad_bias, None, None
