"""The IDC CNN in PyTorch with Keras semantics, and its weights in TF.js order and layout."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .dist import SyncKerasBatchNorm

EPSILON = 1e-7  # Keras' backend epsilon: loss clipping and Adam


class KerasBatchNorm(nn.Module):
    """Batch norm whose moving statistics follow Keras: v <- v - (v - batch) * (1 - momentum), biased variance."""

    def __init__(self, n, momentum, eps=1e-3):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n))
        self.register_buffer('running_mean', torch.zeros(n))
        self.register_buffer('running_var', torch.ones(n))
        self.momentum, self.eps = momentum, eps
        # With several torchrun processes: their Comm, so statistics cover the whole batch (dist.py).
        self.sync = None

    def forward(self, x):
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        if self.sync is not None:
            y, mean, var = SyncKerasBatchNorm.apply(x, self.weight, self.bias, self.eps, self.sync)
            self._follow(mean, var)
            return y
        # No running buffers: PyTorch would update them with the unbiased variance.
        y, mean, invstd = torch.native_batch_norm(x, self.weight, self.bias, None, None, True, 0.0, self.eps)
        with torch.no_grad():
            var = invstd.double().pow(-2).sub(self.eps).float()
        self._follow(mean, var)
        return y

    @torch.no_grad()
    def _follow(self, mean, var):
        decay = 1 - self.momentum
        self.running_mean.sub_((self.running_mean - mean) * decay)
        self.running_var.sub_((self.running_var - var) * decay)


class IdcNet(nn.Module):
    """Conv (no bias) / BN / ReLU / 2x2 max-pool blocks (first 'same', then 'valid'), GAP,
    Dense / BN / ReLU / Dropout blocks with L2 on the kernels, Dense(1) + sigmoid: src/core/engine/model.ts."""

    def __init__(self, filters, dense, dropout, l2, momentum):
        super().__init__()
        self.convs, self.conv_bns = nn.ModuleList(), nn.ModuleList()
        cin = 3
        for i, f in enumerate(filters):
            self.convs.append(nn.Conv2d(cin, f, 3, padding=1 if i == 0 else 0, bias=False))
            self.conv_bns.append(KerasBatchNorm(f, momentum))
            cin = f
        self.dense, self.dense_bns = nn.ModuleList(), nn.ModuleList()
        for units in dense:
            self.dense.append(nn.Linear(cin, units))
            self.dense_bns.append(KerasBatchNorm(units, momentum))
            cin = units
        self.out = nn.Linear(cin, 1)
        self.rate, self.l2 = dropout, l2

    def batch_norms(self):
        return list(self.conv_bns) + list(self.dense_bns)

    def forward(self, x, generator=None, rows=None):
        """x: n x 50 x 50 x 3 (NHWC, as the TypeScript side sends it); returns n probabilities.
        rows (lo, hi, n): x is rows lo..hi of an n-row batch; dropout masks are drawn for all n rows
        and sliced, so a rank's rows get the masks one process would give them."""
        x = x.permute(0, 3, 1, 2).contiguous()
        for conv, bn in zip(self.convs, self.conv_bns):
            x = F.max_pool2d(F.relu(bn(conv(x))), 2)
        x = x.mean((2, 3))
        for d, bn in zip(self.dense, self.dense_bns):
            x = F.relu(bn(d(x)))
            if self.training and 0 < self.rate < 1:
                full = x.shape if rows is None else (rows[2], x.shape[1])
                keep = torch.empty(full, dtype=x.dtype, device=x.device).bernoulli_(1 - self.rate, generator=generator)
                if rows is not None:
                    keep = keep[rows[0]:rows[1]]
                x = x * keep / (1 - self.rate)
        return torch.sigmoid(self.out(x)).squeeze(1)

    def regularization(self):
        """Keras' l2: factor * sum(w^2) per hidden dense kernel, added to the loss."""
        if self.l2 <= 0 or len(self.dense) == 0:
            return torch.zeros((), device=self.out.weight.device)
        return sum(self.l2 * d.weight.pow(2).sum() for d in self.dense)

    def tf_slots(self):
        """(name, tensor, layout) in TF.js model.weights order: trainable weights layer by layer,
        then every batch norm's moving mean and variance. Layout: how TF.js stores the tensor."""
        trainable, moving = [], []
        for conv, bn in zip(self.convs, self.conv_bns):
            trainable += [('Conv2D/kernel', conv.weight, 'hwio'), ('BatchNormalization/gamma', bn.weight, 'same'),
                          ('BatchNormalization/beta', bn.bias, 'same')]
            moving.append(bn)
        for d, bn in zip(self.dense, self.dense_bns):
            trainable += [('Dense/kernel', d.weight, 'io'), ('Dense/bias', d.bias, 'same'),
                          ('BatchNormalization/gamma', bn.weight, 'same'), ('BatchNormalization/beta', bn.bias, 'same')]
            moving.append(bn)
        trainable += [('Dense/kernel', self.out.weight, 'io'), ('Dense/bias', self.out.bias, 'same')]
        buffers = []
        for bn in moving:
            buffers += [('BatchNormalization/moving_mean', bn.running_mean, 'same'),
                        ('BatchNormalization/moving_variance', bn.running_var, 'same')]
        return trainable, buffers


def to_tf(t, layout):
    """A torch tensor as TF.js lays it out: conv OIHW -> HWIO, dense [out, in] -> [in, out]."""
    if layout == 'hwio':
        return t.permute(2, 3, 1, 0)
    if layout == 'io':
        return t.t()
    return t


def tf_shape(t, layout):
    return list(to_tf(t, layout).shape)


def from_tf(flat, shape_like, layout):
    """TF.js-layout values (a flat float32 tensor) as a tensor shaped like the torch one."""
    if layout == 'hwio':
        o, i, h, w = shape_like.shape
        return flat.reshape(h, w, i, o).permute(3, 2, 0, 1)
    if layout == 'io':
        o, i = shape_like.shape
        return flat.reshape(i, o).t()
    return flat.reshape(shape_like.shape)


def batch_loss(y, p, kind, gamma, class_weights, batch_size=None):
    """Keras' binary (focal) cross-entropy on probabilities, class-weighted, 'sum over batch size': losses.ts.
    batch_size: the whole batch's row count when y, p are one rank's share of it."""
    pc = p.clamp(EPSILON, 1 - EPSILON)
    loss = -(y * pc.log() + (1 - y) * (1 - pc).log())
    if kind == 'focal':
        pt = y * p + (1 - y) * (1 - p)
        loss = (1 - pt).pow(gamma) * loss
    if class_weights is not None:
        w0, w1 = class_weights
        loss = loss * (w0 + y * (w1 - w0))
    return loss.mean() if batch_size is None else loss.sum() / batch_size


class TfjsAdam:
    """Adam exactly as tfjs runs it (Keras' epsilon 1e-7): running beta powers in float32, epsilon
    added to the bias-corrected root, slots and step count laid out as tfjs' getWeights."""

    def __init__(self, params, lr, beta1=0.9, beta2=0.999, eps=EPSILON):
        self.params, self.lr, self.b1, self.b2, self.eps = list(params), lr, beta1, beta2, eps
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.iterations = 0
        self.acc1 = torch.tensor(beta1, dtype=torch.float32)
        self.acc2 = torch.tensor(beta2, dtype=torch.float32)

    @torch.no_grad()
    def step(self):
        grads = [p.grad for p in self.params]
        c1, c2 = float(1 - self.acc1), float(1 - self.acc2)
        torch._foreach_mul_(self.m, self.b1)
        torch._foreach_add_(self.m, grads, alpha=1 - self.b1)
        torch._foreach_mul_(self.v, self.b2)
        torch._foreach_addcmul_(self.v, grads, grads, value=1 - self.b2)
        mh = torch._foreach_div(self.m, c1)
        vh = torch._foreach_div(self.v, c2)
        torch._foreach_sqrt_(vh)
        torch._foreach_add_(vh, self.eps)
        torch._foreach_div_(mh, vh)
        torch._foreach_add_(self.params, mh, alpha=-self.lr)
        self.acc1 = self.acc1 * self.b1
        self.acc2 = self.acc2 * self.b2
        self.iterations += 1
