"""GPU checks of the whole backbone (skipped without CUDA; run on a GPU machine)."""
import pytest
import torch

from mmmobilemamba.models.backbones import MobileMamba
from mmmobilemamba.models.classifier import MobileMambaClassifier

from _random_weights import (BF16, GPU_FP32, GPU_TF32, assert_every_branch_contributes, randomize_norms_and_scales,
                             relative_error)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
ARCHS = sorted(MobileMamba.arch_settings)


@pytest.mark.parametrize('arch', ARCHS)
def test_cuda_matches_cpu(arch, tf32):
    tf32(False)
    model = randomize_norms_and_scales(MobileMamba(arch))
    x = torch.randn(2, 3, 160, 224)
    assert_every_branch_contributes(model, x)
    with torch.no_grad():
        expected = model(x)
        got = model.cuda()(x.cuda())
    for a, b in zip(got, expected):
        assert relative_error(a, b) <= GPU_FP32


@pytest.mark.parametrize('arch', ARCHS)
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_amp_training_step_is_finite(arch, dtype):
    model = MobileMamba(arch).cuda().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler('cuda', enabled=dtype == torch.float16)
    for _ in range(2):
        with torch.autocast('cuda', dtype=dtype):
            loss = sum(o.float().square().mean() for o in model(torch.randn(4, 3, 256, 256, device='cuda')))
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
        assert torch.isfinite(loss)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_deploy_fusion_on_cuda(tf32):
    tf32(False)
    model = randomize_norms_and_scales(MobileMambaClassifier('S6')).cuda()
    x = torch.randn(8, 3, 224, 224, device='cuda')
    assert_every_branch_contributes(model, x)
    with torch.no_grad():
        reference = model(x)
        fused = model.switch_to_deploy()(x)
    assert relative_error(fused, reference) <= GPU_FP32


@pytest.mark.parametrize('arch', ['S6', 'B4'])
@pytest.mark.parametrize('precision', ['fp32', 'tf32', 'bf16'])
def test_deployed_backbone_matches_unfused(arch, precision, tf32, monkeypatch):
    """Deploy mode (channels-last, GEMM 1x1 convs, Triton depthwise and stem convs) against the
    trained form, on an input whose stage sizes are odd; the Triton kernels really run; the TF32
    flag of matrix products is left as it was. fp32: TF32 off; tf32: cuDNN's TF32 convolutions on
    (PyTorch's default), which the deployed GEMMs follow."""
    from mmmobilemamba.ops import kernel_registry
    tf32(precision != 'fp32')
    model = randomize_norms_and_scales(MobileMamba(arch)).cuda()
    x = torch.randn(2, 3, 208, 300, device='cuda')
    assert_every_branch_contributes(model, x)
    amp = torch.autocast('cuda', dtype=torch.bfloat16, enabled=precision == 'bf16')
    with torch.no_grad(), amp:
        reference = model(x)
    model.switch_to_deploy()
    kernel, calls = kernel_registry.loaded_kernel('depthwise_conv'), []
    monkeypatch.setitem(kernel_registry.LOADED_KERNELS, 'depthwise_conv',
                        lambda *a: calls.append(a[1] is None) or kernel(*a))
    matmul_tf32 = torch.backends.cuda.matmul.allow_tf32
    with torch.no_grad(), amp:
        deployed = model(x)
    assert calls.count(True) == 3 and calls.count(False) > 10  # the stem's 3 epilogues, the depthwise convs
    assert torch.backends.cuda.matmul.allow_tf32 == matmul_tf32
    for d, r in zip(deployed, reference):
        assert d.shape == r.shape and d.is_contiguous()
        assert relative_error(d, r) <= {'fp32': GPU_FP32, 'tf32': GPU_TF32, 'bf16': BF16}[precision]


@pytest.mark.parametrize('channels,kernel,stride,height,width,epilogue,layout', [
    (37, 3, 1, 5, 7, 'bias', 'channels_last'), (192, 3, 1, 14, 14, 'bias', 'channel_slice'),
    (100, 7, 1, 9, 13, 'relu_post', 'channel_slice'), (64, 5, 1, 33, 31, 'relu_post', 'contiguous'),
    (768, 3, 2, 14, 14, 'bias', 'channels_last'), (40, 3, 2, 7, 9, 'silu', 'contiguous'),
    (96, 1, 1, 6, 6, 'none', 'channels_last'), (544, 3, 1, 4, 4, 'none', 'channel_slice'),
    (24, None, 1, 19, 17, 'bias_relu_only', 'channels_last')])
def test_depthwise_kernel_matches_conv2d(channels, kernel, stride, height, width, epilogue, layout):
    import torch.nn.functional as F
    from mmmobilemamba.ops.triton_depthwise_conv import depthwise_conv_triton
    x = torch.randn(2, 2 * channels, height, width, device='cuda')
    if layout == 'channels_last':
        x = x[:, :channels].contiguous(memory_format=torch.channels_last)
    elif layout == 'contiguous':
        x = x[:, :channels].contiguous()
    else:
        x = x.contiguous(memory_format=torch.channels_last)[:, channels:]
    weight = None if kernel is None else torch.randn(channels, 1, kernel, kernel, device='cuda')
    bias = None if epilogue == 'none' else torch.randn(channels, device='cuda')
    post = (torch.randn(channels, device='cuda'), torch.randn(channels, device='cuda'))
    activation = {'relu_post': 'relu', 'silu': 'silu', 'bias_relu_only': 'relu'}.get(epilogue)
    got = depthwise_conv_triton(x, weight, bias, stride, activation,
                                *(post if epilogue == 'relu_post' else (None, None)))
    if weight is None:  # the epilogue alone: unit 1x1 weights
        kernel, weight = 1, torch.ones(channels, 1, 1, 1, device='cuda')
    expected = F.conv2d(x.double(), weight.double(), None if bias is None else bias.double(), stride,
                        kernel // 2, groups=channels)
    if epilogue == 'relu_post':
        expected = F.relu(expected) * post[0].double()[:, None, None] + post[1].double()[:, None, None]
    elif activation == 'silu':
        expected = F.silu(expected)
    elif epilogue == 'bias_relu_only':
        expected = F.relu(expected)
    assert got.shape == expected.shape and got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)
    half = depthwise_conv_triton(x, weight, bias, stride, out_dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16
    plain = F.conv2d(x.double(), weight.double(), None if bias is None else bias.double(), stride,
                     kernel // 2, groups=channels)
    torch.testing.assert_close(half.double(), plain, rtol=1e-2, atol=1e-2 * plain.abs().max().item())


@pytest.mark.parametrize('in_channels,out_channels,height,width,relu,layout', [
    (3, 24, 224, 224, True, 'contiguous'), (24, 48, 57, 55, True, 'channels_last'),
    (96, 192, 28, 28, False, 'channels_last')])
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_dense_conv_matches_conv_relu(in_channels, out_channels, height, width, relu, layout, dtype):
    """The stem's DenseConv (cuDNN conv, bias + ReLU in the Triton epilogue pass) against conv2d + relu."""
    import torch.nn.functional as F
    from mmmobilemamba.models.layers.inference_convs import DenseConv, convert_for_inference
    conv = torch.nn.Conv2d(in_channels, out_channels, 3, 2, 1).cuda()
    layer = convert_for_inference(torch.nn.Sequential(conv, torch.nn.ReLU()) if relu else torch.nn.Sequential(conv))
    assert isinstance(layer[0], DenseConv) and layer[0].relu == relu
    layout = torch.channels_last if layout == 'channels_last' else torch.contiguous_format
    x = torch.randn(2, in_channels, height, width, device='cuda').contiguous(memory_format=layout)
    amp = torch.autocast('cuda', dtype=dtype, enabled=dtype != torch.float32)
    with torch.no_grad(), amp:
        got = layer(x)
        expected = F.relu(conv(x)) if relu else conv(x)
    assert got.dtype == expected.dtype and got.is_contiguous(memory_format=torch.channels_last)
    tolerance = 2e-3 if dtype == torch.float32 else 1e-2  # TF32 products, algorithms may differ by layout
    torch.testing.assert_close(got.float(), expected.float(), rtol=tolerance,
                               atol=tolerance * expected.abs().max().item())


def test_depthwise_conv_keeps_gradients_through_the_torch_path():
    from mmmobilemamba.models.layers.inference_convs import DepthwiseConv
    conv = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8).cuda()
    layer = DepthwiseConv.from_conv(conv)
    x = torch.randn(2, 8, 9, 9, device='cuda', requires_grad=True)
    layer(x).sum().backward()
    torch.testing.assert_close(layer(x), conv(x))
    assert x.grad is not None and layer.weight.grad is not None


def test_with_cp_on_cuda():
    model = MobileMamba('S6', with_cp=True).cuda().train()
    loss = sum(o.mean() for o in model(torch.randn(2, 3, 256, 256, device='cuda')))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_torch_compile_keeps_the_triton_scan_in_one_graph(tf32):
    """Inductor compiles the deployed S6 as one graph with our Triton scan inside it."""
    import torch._dynamo
    tf32(False)
    model = randomize_norms_and_scales(MobileMamba('S6')).cuda()
    x = torch.randn(8, 3, 224, 224, device='cuda')
    assert_every_branch_contributes(model, x)
    model.switch_to_deploy()
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    with torch.no_grad():
        expected = model(x)
        compiled = torch.compile(model, fullgraph=True)(x)
    for e, c in zip(expected, compiled):
        assert relative_error(c, e) <= GPU_FP32


@pytest.mark.parametrize('channels,height,width', [(37, 4, 4), (544, 7, 7), (320, 14, 14), (64, 33, 31)])
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
@pytest.mark.parametrize('channels_last', [False, True])
def test_fused_layer_norm_gate_matches_generic(channels, height, width, dtype, channels_last, inference_kernel_calls):
    import torch.nn.functional as F
    from mmmobilemamba.models.layers.ss2d import BiSS2D, LayerNorm2d
    calls = inference_kernel_calls('layer_norm_gate')
    module = BiSS2D(16).cuda().eval()
    module.out_norm = norm = LayerNorm2d(channels).cuda()
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    layout = torch.channels_last if channels_last else torch.contiguous_format
    y = (torch.randn(2, channels, height, width, device='cuda') * 3 + 1).contiguous(memory_format=layout)
    gate = torch.randn(2, 2 * channels, height, width, device='cuda').to(dtype)
    gate = gate.contiguous(memory_format=layout)[:, channels:]  # a channel slice
    with torch.no_grad():
        got = module.norm_and_gate(y, gate, dtype)
    assert calls and got.dtype == dtype and got.shape == y.shape
    assert got.is_contiguous(memory_format=layout)
    expected = F.layer_norm(y.double().permute(0, 2, 3, 1), (channels,), norm.weight.double(),
                            norm.bias.double(), norm.eps).permute(0, 3, 1, 2) * F.silu(gate.double())
    tolerance = 1e-5 if dtype == torch.float32 else 1e-2  # bf16: one rounding of the result
    torch.testing.assert_close(got.double(), expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize('arch', ['S6', 'B4'])
@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_inference_kernels_match_generic_ss2d(arch, dtype, inference_kernel_calls, tf32, monkeypatch):
    """The whole backbone with SS2D's fused inference kernels agrees with the generic path."""
    from mmmobilemamba.models.layers import ss2d
    calls = inference_kernel_calls('bidirectional_scan')
    tf32(False)
    model = randomize_norms_and_scales(MobileMamba(arch)).cuda()
    x = torch.randn(2, 3, 224, 288, device='cuda')
    with torch.no_grad(), torch.autocast('cuda', dtype=dtype, enabled=dtype != torch.float32):
        fused = model(x)
        assert calls
        monkeypatch.setattr(ss2d, 'triton_inference_kernel', lambda *args, **kwargs: None)
        generic = model(x)
    for f, g in zip(fused, generic):
        assert relative_error(f, g) <= (GPU_FP32 if dtype == torch.float32 else BF16)
    assert_every_branch_contributes(model, x)
