"The distributed code paths, run for real in a one-process gloo group (CPU, no network beyond a local file)."
import numpy as np
import torch
import torch.distributed as dist

from mst_nb.losses import DINOLoss


def test_center_update_all_reduces(tmp_path):
    "Inside a process group the centre's batch mean goes through all_reduce and still equals the EMA by hand"
    dist.init_process_group('gloo', init_method=f'file://{tmp_path/"pg"}', rank=0, world_size=1)
    try:
        assert dist.is_initialized()
        loss = DINOLoss(4, np.full(3, 0.04))
        t1, t2 = torch.randn(6, 4), torch.randn(6, 4)
        loss.update_center(t1); loss.update_center(t2)
        expected = 0.9 * (0.1 * t1.mean(0)) + 0.1 * t2.mean(0)
        torch.testing.assert_close(loss.center[0], expected)
    finally:
        dist.destroy_process_group()
