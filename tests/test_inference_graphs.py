"""``MobileMamba(cuda_graph_inference=True)``: eval-mode forwards without gradients replayed as CUDA
graphs give the eager forward's outputs (randomised norms and scales), unfused and in deploy mode.

Off CUDA the option changes nothing (checked here on the CPU); the graph tests need a GPU.
"""
import copy
import pickle

import pytest
import torch

from mmmobilemamba.models.backbones import MobileMamba
from mmmobilemamba.models.layers.cuda_graph import InferenceGraphCache

from _random_weights import BF16, GPU_FP32, randomize_norms_and_scales, relative_error

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


def _pair(device='cpu', **kwargs):
    """(eager, graphed) T2 backbones with the same randomised weights, in eval mode."""
    eager = randomize_norms_and_scales(MobileMamba('T2', **kwargs))
    graphed = MobileMamba('T2', cuda_graph_inference=True, **kwargs)
    graphed.load_state_dict(eager.state_dict())
    return eager.to(device).eval(), graphed.to(device).eval()


def _forward(model, x, autocast_dtype=None):
    with torch.no_grad(), torch.autocast(x.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        return model(x)


def _assert_outputs_close(got, expected, tolerance):
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert relative_error(a, b) <= tolerance, relative_error(a, b)


def test_off_cuda_the_option_runs_eagerly():
    eager, graphed = _pair()
    x = torch.randn(1, 3, 128, 160)
    _assert_outputs_close(_forward(graphed, x), _forward(eager, x), 1e-6)
    assert len(graphed._inference_graphs) == 0


def test_cache_size_must_be_positive():
    with pytest.raises(ValueError, match='max_graphs'):
        InferenceGraphCache(max_graphs=0)


def test_copies_and_pickles_start_without_graphs():
    cache = InferenceGraphCache(max_graphs=3)
    cache._graphs[('key',)] = object()
    for clone in (copy.deepcopy(cache), pickle.loads(pickle.dumps(cache))):
        assert len(clone) == 0 and clone.max_graphs == 3
    assert len(cache) == 1


def test_moving_or_fusing_the_module_drops_its_graphs():
    model = MobileMamba('T2', cuda_graph_inference=True)
    for change in (lambda m: m.to(torch.float32), lambda m: m.switch_to_deploy(inference_convs=False)):
        model._inference_graphs._graphs[('key',)] = object()
        change(model)
        assert len(model._inference_graphs) == 0


@requires_cuda
@pytest.mark.parametrize('deploy', [False, True], ids=['unfused', 'deploy'])
def test_graphed_forwards_equal_eager(tf32, deploy):
    tf32(False)
    eager, graphed = _pair('cuda')
    if deploy:
        eager.switch_to_deploy()
        graphed.switch_to_deploy()
    first, second = (torch.randn(1, 3, 160, 224, device='cuda') for _ in range(2))
    held = _forward(graphed, first)          # capture
    _assert_outputs_close(held, _forward(eager, first), GPU_FP32)
    got = _forward(graphed, second)          # replay
    _assert_outputs_close(got, _forward(eager, second), GPU_FP32)
    _assert_outputs_close(held, _forward(eager, first), GPU_FP32)  # earlier results are copies, not overwritten
    assert len(graphed._inference_graphs) == 1


@requires_cuda
def test_graphed_bf16_autocast_forward_equals_eager():
    eager, graphed = _pair('cuda')
    x = torch.randn(1, 3, 160, 224, device='cuda')
    for _ in range(2):
        _assert_outputs_close(_forward(graphed, x, torch.bfloat16), _forward(eager, x, torch.bfloat16), BF16)
    assert len(graphed._inference_graphs) == 1


@requires_cuda
def test_deploy_after_capture_replays_the_fused_network(tf32):
    tf32(False)
    eager, graphed = _pair('cuda')
    x = torch.randn(1, 3, 128, 192, device='cuda')
    _forward(graphed, x)
    eager.switch_to_deploy()
    graphed.switch_to_deploy()
    assert len(graphed._inference_graphs) == 0
    _assert_outputs_close(_forward(graphed, x), _forward(eager, x), GPU_FP32)


@requires_cuda
def test_gradients_on_training_mode_and_new_shapes_past_the_limit_run_eagerly(tf32):
    tf32(False)
    eager, graphed = _pair('cuda', cuda_graph_max_shapes=1)
    first, second = (torch.randn(1, 3, h, 192, device='cuda') for h in (128, 192))
    outs = graphed(first)                    # eval mode with gradients on (e.g. attribution): eager
    assert outs[-1].requires_grad and len(graphed._inference_graphs) == 0
    _forward(graphed, first)
    with pytest.warns(RuntimeWarning, match='cuda_graph_inference holds 1'):
        got = _forward(graphed, second)
    _assert_outputs_close(got, _forward(eager, second), GPU_FP32)
    graphed.train()
    with torch.no_grad():
        graphed(second)
    assert len(graphed._inference_graphs) == 1


@requires_cuda
def test_inference_mode_and_no_grad_share_a_graph(tf32):
    tf32(False)
    eager, graphed = _pair('cuda')
    x = torch.randn(1, 3, 128, 160, device='cuda')
    with torch.inference_mode():
        first = graphed(x)                   # captured under inference mode
    _assert_outputs_close(_forward(graphed, x), _forward(eager, x), GPU_FP32)  # replayed under no_grad
    _assert_outputs_close(first, _forward(eager, x), GPU_FP32)
    assert len(graphed._inference_graphs) == 1
