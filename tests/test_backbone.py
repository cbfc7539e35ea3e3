"""MobileMamba backbone: shapes, options, registry, release compatibility, bad input."""
import gzip
import json
import logging
import math
from pathlib import Path

import pytest
import torch

from mmmobilemamba.models.backbones import MobileMamba
from mmmobilemamba.models.classifier import MobileMambaClassifier
from mmmobilemamba.models.layers.block import Residual
from mmmobilemamba.models.layers.mrffi import split_channels
from mmmobilemamba.models.layers.wte_mamba import Scale

from _random_weights import CPU_FP32, assert_every_branch_contributes, randomize_norms_and_scales, relative_error

ARCHS = sorted(MobileMamba.arch_settings)
OFFICIAL = json.load(gzip.open(Path(__file__).parent / 'data' / 'official_state_dict_shapes.json.gz', 'rt'))


@pytest.mark.parametrize('arch', ARCHS)
def test_state_dict_matches_official_release(arch):
    """Names and shapes equal the release's classifier (tests/data, read off the release's model)."""
    ours = {k: list(v.shape) for k, v in MobileMambaClassifier(arch).state_dict().items()}
    assert ours == OFFICIAL['variants'][arch]


@pytest.mark.parametrize('arch', ARCHS)
@pytest.mark.parametrize('size', [(64, 64), (97, 130), (224, 160)])
def test_output_shapes_and_strides(arch, size):
    model = MobileMamba(arch).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, *size))
    dims = MobileMamba.arch_settings[arch]['embed_dims']
    assert model.out_channels == list(dims) and model.strides == [16, 32, 64]
    for out, channels, stride in zip(outs, dims, (16, 32, 64)):
        assert out.shape == (1, channels, math.ceil(size[0] / stride), math.ceil(size[1] / stride))


def test_params_match_paper():
    """ImageNet classifiers: 8.8M (T2), 14.2M (T4), 15.0M (S6), 17.1M (B1/B2/B4) in the paper."""
    paper = {'T2': 8.8, 'T4': 14.2, 'S6': 15.0, 'B1': 17.1, 'B2': 17.1, 'B4': 17.1}
    for arch, millions in paper.items():
        params = sum(p.numel() for p in MobileMambaClassifier(arch).parameters()) / 1e6
        assert abs(params - millions) / millions < 0.01, (arch, params)


def test_mrffi_split_of_s6():
    # S6 stage 1: 192 ch, 0.8 -> int(153.6)=153 -> nearest multiple of 16 = 160; local clipped to 32
    assert split_channels(192, 0.8, 0.2) == (160, 32, 0)
    assert split_channels(448, 0.6, 0.3) == (272, 134, 42)


def test_out_indices_subset_freezes_unused_stages():
    model = MobileMamba('T2', out_indices=(0, 1))
    outs = model(torch.randn(2, 3, 64, 64))
    assert [o.shape[1] for o in outs] == [144, 272]
    assert all(not p.requires_grad for p in model.blocks3.parameters())
    assert all(p.requires_grad for p in model.blocks2.parameters())


@pytest.mark.parametrize('frozen_stages', [0, 1, 3])
def test_frozen_stages_stay_frozen_through_training(frozen_stages):
    model = MobileMamba('T2', frozen_stages=frozen_stages)
    frozen = [model.patch_embed] + model.stages[:frozen_stages]
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in frozen]
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=0.1) if trainable else None
    for _ in range(2):
        loss = sum(o.mean() for o in model(torch.randn(2, 3, 64, 64)))
        if optimizer:
            loss.backward()
            optimizer.step()
    for module, state in zip(frozen, before):
        assert not module.training
        assert all(not p.requires_grad for p in module.parameters())
        for k, v in module.state_dict().items():
            torch.testing.assert_close(v, state[k], msg=k)  # weights AND BN running stats
    if frozen_stages < 3:
        assert model.stages[frozen_stages].training


def test_norm_eval_keeps_batchnorm_statistics():
    model = MobileMamba('T2', norm_eval=True).train()
    mean = model.blocks1[0].dw0.m.bn.running_mean.clone()
    model(torch.randn(2, 3, 64, 64) * 5 + 3)
    torch.testing.assert_close(model.blocks1[0].dw0.m.bn.running_mean, mean)
    assert model.training and not model.blocks1[0].dw0.m.bn.training


def test_norm_eval_from_scratch_warns(monkeypatch):
    from mmmobilemamba.models.backbones import mobilemamba
    messages = []
    monkeypatch.setattr(mobilemamba, 'print_log', lambda msg, **kwargs: messages.append((msg, kwargs['level'])))
    MobileMamba('T2', norm_eval=False).init_weights()
    assert messages == []
    MobileMamba('T2', norm_eval=True).init_weights()
    (message, level), = messages
    assert 'set norm_eval=False to train from scratch' in message and level == logging.WARNING


def test_with_cp_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = randomize_norms_and_scales(MobileMamba('T2'))
    ckpt = MobileMamba('T2', with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 64, 96)
    assert_every_branch_contributes(plain, x)
    for model in (plain.train(), ckpt.train()):
        sum(o.square().mean() for o in model(x)).backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_drop_path_rate_defaults_and_override():
    assert MobileMamba('B1').blocks3[-1].drop_path_rate == pytest.approx(0.03)
    assert MobileMamba('S6').blocks3[-1].drop_path_rate == 0.0
    assert MobileMamba('S6', drop_path_rate=0.2).blocks3[-1].drop_path_rate == pytest.approx(0.2)


def test_multi_kernel_local_branch_option():
    model = MobileMamba('T2', local_kernel_sizes=((3, 5, 7), (3, 5), (3,))).eval()
    local = model.blocks1[0].mixer.m.attn.local_op
    assert [conv.kernel_size[0] for conv in local.dwconvs] == [3, 5, 7]
    assert [o.shape[1] for o in model(torch.randn(1, 3, 64, 64))] == [144, 272, 368]


@pytest.mark.parametrize('arch', ARCHS)
def test_bf16_autocast_training_step_is_finite(arch):
    model = MobileMamba(arch).train()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = sum(o.float().square().mean() for o in model(torch.randn(2, 3, 64, 64)))
    loss.backward()
    assert torch.isfinite(loss)
    # every trainable parameter gets a finite gradient, even with a 1x1 stride-64 map (DDP-safe)
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


@pytest.mark.parametrize('inference_convs', [True, False], ids=['inference-convs', 'plain-convs'])
@pytest.mark.parametrize('build', [
    lambda: MobileMambaClassifier('S6', distillation=True),
    lambda: MobileMamba('T2', global_mixer='mambavision', local_kernel_sizes=((3, 5),) * 3),
], ids=['S6-classifier', 'T2-mambavision-multikernel'])
def test_deploy_fusion_matches_unfused(build, inference_convs):
    from mmmobilemamba.models.layers.inference_convs import DenseConv, DepthwiseConv, PointwiseConv
    model = randomize_norms_and_scales(build())
    x = torch.randn(2, 3, 208, 300)
    assert_every_branch_contributes(model, x)
    with torch.no_grad():
        reference = model(x)
        model.switch_to_deploy(inference_convs=inference_convs)
        fused = model(x)
    if isinstance(reference, torch.Tensor):
        reference, fused = [reference], [fused]
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    # the scales went into the convs, and the depthwise residuals (dw0, dw1, refinement) into theirs
    assert not any(isinstance(m, Scale) for m in model.modules())
    assert not any(isinstance(m, Residual) and isinstance(m.m, (torch.nn.Conv2d, DepthwiseConv))
                   for m in model.modules())
    inference_layers = [m for m in model.modules() if isinstance(m, (PointwiseConv, DepthwiseConv, DenseConv))]
    plain_convs = [m for m in model.modules() if type(m) is torch.nn.Conv2d]
    assert (inference_layers and not plain_convs) if inference_convs else (plain_convs and not inference_layers)
    for r, f in zip(reference, fused):
        assert f.is_contiguous() and relative_error(f, r) <= CPU_FP32


def test_inference_convs_take_over_the_following_relu_and_depthwise_1x1():
    """switch_to_deploy() moves each ReLU after a converted conv, and MK-DeConv's depthwise 1x1
    conv, into the conv before them (one kernel on CUDA)."""
    from mmmobilemamba.models.layers.inference_convs import DenseConv, DepthwiseConv, PointwiseConv
    model = MobileMamba('S6').eval().switch_to_deploy()
    stem = [m for m in model.patch_embed if not isinstance(m, torch.nn.Identity)]
    assert [type(m) for m in stem] == [DenseConv] * 4 and [m.relu for m in stem] == [True, True, True, False]
    block = model.blocks1[0]
    ffn = block.ffn0.m
    assert isinstance(ffn.pw1, PointwiseConv) and ffn.pw1.relu and isinstance(ffn.act, torch.nn.Identity)
    assert isinstance(ffn.pw2, PointwiseConv) and not ffn.pw2.relu
    local = [m for m in block.mixer.m.attn.local_op if not isinstance(m, torch.nn.Identity)]
    assert len(local) == 1 and isinstance(local[0], DepthwiseConv)
    assert local[0].kernel_size == 7 and local[0].activation == 'relu' and local[0].post_weight is not None
    assert isinstance(block.dw0, DepthwiseConv)  # x + dwconv(x), folded into one depthwise conv


def test_registry_from_mmdet_and_mmseg_scopes():
    import mmmobilemamba  # noqa: F401  (registers)
    from mmdet.registry import MODELS as DET_MODELS
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS as SEG_MODELS
    for scope, registry in (('mmdet', DET_MODELS), ('mmseg', SEG_MODELS)):
        with DefaultScope.overwrite_default_scope(scope):
            model = registry.build(dict(type='MobileMamba', arch='t2', out_indices=(1, 2)))
        assert isinstance(model, MobileMamba) and model.out_channels == [272, 368]


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(arch='S7'), KeyError, 'unknown MobileMamba arch'),
    (dict(out_indices=(0, 3)), ValueError, 'out_indices must be distinct stage indices'),
    (dict(out_indices=()), ValueError, 'out_indices'),
    (dict(frozen_stages=4), ValueError, 'frozen_stages must be an int'),
    (dict(global_mixer='attention'), ValueError, 'global_mixer'),
])
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        MobileMamba(**{'arch': 'T2', **kwargs})


def test_bad_inputs_are_named():
    model = MobileMamba('T2')
    with pytest.raises(ValueError, match='built for 3 input channels but got 4'):
        model(torch.randn(1, 4, 64, 64))
    with pytest.raises(ValueError, match='smaller than MobileMamba.s total stride 64'):
        model(torch.randn(1, 3, 48, 128))
    x = torch.randn(1, 3, 64, 64)
    x[0, 0, 3, 3] = float('nan')
    with pytest.raises(FloatingPointError, match='NaN/Inf'):
        model.train()(x)
    model.eval()(x)  # inference does not pay for the check


def test_custom_arch_dict():
    model = MobileMamba(dict(embed_dims=(64, 96, 128), depths=(1, 1, 1))).eval()
    assert [o.shape[1] for o in model(torch.randn(1, 3, 64, 64))] == [64, 96, 128]


@pytest.mark.parametrize('requested', ['auto', 'triton'])
def test_torch_compile_traces_whole_backbone_without_graph_breaks(requested, monkeypatch):
    """The backend choice (here also a kernel this machine may lack: warning + fallback) is a
    constant under torch.compile: one graph, and the traced model (aot_eager, no C++ build
    needed) computes what eager does."""
    import torch._dynamo
    monkeypatch.setenv('MMMOBILEMAMBA_SCAN_BACKEND', requested)
    model = randomize_norms_and_scales(MobileMamba('T2'))
    x = torch.randn(1, 3, 128, 128)
    assert_every_branch_contributes(model, x)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1
    with torch.no_grad():
        expected = model(x)
        traced = torch.compile(model, backend='aot_eager', fullgraph=True)(x)
    for e, t in zip(expected, traced):
        assert relative_error(t, e) <= CPU_FP32
