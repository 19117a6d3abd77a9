"""Where a training step makes the host wait for the device, counted on any machine: the ops whose result the
host needs (a scalar read, `nonzero`, indexing with a boolean mask), by the line of `mst_nb` (or fastai) that ran
them, over whole training batches of a learner's real `fit`.

A small ViT's step is bound by kernel launches: it is fast only while the CPU queues kernels ahead of the GPU, and
every such op drains that queue. On a CPU they cost nothing, but they are the same ops that wait on a GPU, so
`tests/test_bench.py` checks the count without one. (Copies to the host — `.cpu()`, `.tolist()` — are no-ops on a
CPU and not seen here; `bench/syncs.py` on a GPU counts every real wait.) `BatchWindow` is the window that
`bench/loop.py` (a clock) and `bench/syncs.py` (CUDA's sync warnings) use too.

A profiler for the bench, not part of the package: training never imports it.
"""
from __future__ import annotations
import collections, sys, types
from collections.abc import Callable
from pathlib import Path

import torch
import mst_nb.core  # noqa: F401  (first: it imports fastai without the warning fastai raises at import)
from fastcore.basics import noop
from fastai.callback.core import Callback, CancelFitException
from fastai.learner import Learner
from torch.utils._python_dispatch import TorchDispatchMode

_aten = torch.ops.aten
HOST_READ_OPS = {_aten._local_scalar_dense.default, _aten.nonzero.default, _aten.masked_select.default,
                 _aten.is_nonzero.default, _aten.equal.default, _aten.item.default}
HOST_ONLY = {   # reads HostReads finds on a CPU that do not wait on a GPU, and why
    'augment.py:_blur_drawn': 'picks the views to blur on a CPU only (on a GPU it blurs all: σ = 0 is the identity)',
    'schedule.py:combine_scheds.<locals>._inner': "fastai's schedule computes on host tensors in every run"}
MASK_INDEXING = {_aten.index.Tensor, _aten.index_put.default, _aten.index_put_.default}   # a bool index: nonzero inside


def package_frame(depth: int = 1,  # 1: start at the caller's caller
                  packages: tuple = ('mst_nb', 'fastai', 'fastprogress')) -> types.FrameType:
    "The innermost frame of `packages`' code that led here (else the frame `depth` up): where a counted op came from"
    f = inner = sys._getframe(depth + 1)
    while f is not None and not any(f'/{p}/' in f.f_code.co_filename for p in packages): f = f.f_back
    return f or inner


def caller() -> str:
    "'file.py:function' of the package code that ran the op being dispatched"
    f = package_frame(2)
    return f'{Path(f.f_code.co_filename).name}:{f.f_code.co_qualname}'


class HostReads(TorchDispatchMode):
    "Within it, count the ops that make the host wait for the device, as {(op, 'file.py:function'): n}"
    def __init__(self):
        super().__init__(); self.counts = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        hit = func in HOST_READ_OPS or (func in MASK_INDEXING and any(
            i is not None and i.dtype in (torch.bool, torch.uint8) for i in args[1]))
        if hit: self.counts[(func.__name__.split('.')[0], caller())] += 1
        return func(*args, **(kwargs or {}))


class BatchWindow(Callback):
    "`on_open()` at the start of training batch `skip`, `on_close()` at the start of batch `skip + n`, then the fit ends"
    order = -100   # first: a batch's window holds all of it, augmentation (MultiCrop) and every callback included

    def __init__(self, skip: int, n: int,  # batches before the window (across epochs), and in it
                 on_open: Callable = noop, on_close: Callable = noop):
        self.skip, self.n, self.on_open, self.on_close, self.done, self.active = skip, n, on_open, on_close, 0, False

    def before_batch(self):
        if not self.training: return   # validation batches (none in an MST run) are neither counted nor windowed
        if self.done == self.skip: self.on_open(); self.active = True
        if self.done == self.skip + self.n: self._close(); raise CancelFitException()

    def after_batch(self): self.done += self.training
    def after_fit(self): self._close()   # a fit that ends (or fails) inside the window still closes it

    def _close(self):
        if self.active: self.active = False; self.on_close()


def host_reads_per_step(learn: Learner,  # from `mst_learner`; its `fit` runs until the window is counted
                        skip: int = 3,  # batches not counted (first-call caches, the first epoch's baselines)
                        n: int = 5,  # batches counted
                        ) -> dict:
    "{(op, 'file.py:function'): reads per training batch} over `n` batches of `learn`'s real training loop"
    mode = HostReads()
    window = BatchWindow(skip, n, mode.__enter__, lambda: mode.__exit__(None, None, None))
    learn.add_cb(window)
    try: learn.fit(1 + (skip + n) // len(learn.dls.train))
    finally: learn.remove_cb(window)
    return {k: v / n for k, v in mode.counts.most_common()}
