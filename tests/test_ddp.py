"""DDP (gloo, 2 CPU processes): no 'unused parameters' error for any variant / freezing setting, and
the trainable parameters' gradients are synchronised."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmmobilemamba.models.backbones import MobileMamba

# (arch, out_indices, frozen_stages): every setting leaves some stage trainable, with frozen stages
# before it (frozen_stages) and, where out_indices stops early, unused stages after it
SETTINGS = [('T2', (0, 1, 2), -1), ('T4', (0, 1, 2), 1), ('S6', (0, 1), -1), ('B1', (1, 2), 0),
            ('B2', (0, 1), 1), ('B4', (0, 1, 2), 2)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank, world_size, port, results):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    torch.set_num_threads(1)
    try:
        for arch, out_indices, frozen in SETTINGS:
            torch.manual_seed(0)
            model = MobileMamba(arch, out_indices=out_indices, frozen_stages=frozen).train()
            trainable = [name for name, p in model.named_parameters() if p.requires_grad]
            frozen_prefixes = (('patch_embed.',) + tuple(f'blocks{i}.' for i in range(1, frozen + 1))
                               if frozen >= 0 else ())
            assert trainable and not [n for n in trainable if n.startswith(frozen_prefixes)], arch
            ddp = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=False)
            for step in range(2):  # the unused-parameter error surfaces on the second step
                x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(rank * 10 + step))
                sum(o.mean() for o in ddp(x)).backward()
            grads = [p.grad for p in model.parameters() if p.requires_grad]
            assert all(g is not None for g in grads)
            assert any(g.abs().sum() > 0 for g in grads), 'nothing was trained'
            flat = torch.cat([g.flatten() for g in grads])
            gathered = [torch.zeros_like(flat) for _ in range(world_size)]
            dist.all_gather(gathered, flat)
            assert torch.equal(gathered[0], gathered[1]), 'gradients not synchronised'
        results[rank] = 'ok'
    except Exception as err:  # reported to the parent process
        results[rank] = f'{type(err).__name__}: {err}'
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(300)
def test_ddp_has_no_unused_parameters():
    results = mp.Manager().dict()
    mp.spawn(_worker, args=(2, _free_port(), results), nprocs=2, join=True)
    assert dict(results) == {0: 'ok', 1: 'ok'}
