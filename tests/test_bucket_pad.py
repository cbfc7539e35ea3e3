"""``BatchBucketPad``: each training batch padded to the smallest size that holds it; what the
cuda-graph detection config's data preprocessor does with keep-ratio batches."""
import os
import warnings

import pytest
import torch
from mmdet.testing import demo_mm_inputs
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import mmmobilemamba  # noqa: F401
from mmmobilemamba.models.data_preprocessors import BatchBucketPad

from _toolrun import ROOT

SIZES = [(1344, 800), (800, 1344), (1344, 1344)]


def _batch(height, width, with_mask=False):
    data = demo_mm_inputs(batch_size=2, image_shapes=[(3, height, width)] * 2, num_items=[2, 2], with_mask=with_mask)
    return torch.stack(data['inputs']).float() + 1, data['data_samples']


@pytest.mark.parametrize('shape, padded', [((800, 1088), (800, 1344)), ((1088, 800), (1344, 800)),
                                           ((800, 800), (1344, 800)), ((1000, 1000), (1344, 1344))])
def test_smallest_size_that_holds_the_batch(shape, padded):
    inputs, samples = _batch(*shape)
    out, samples = BatchBucketPad(SIZES)(inputs, samples)
    assert out.shape[-2:] == padded
    assert torch.equal(out[..., :shape[0], :shape[1]], inputs)
    assert out[..., shape[0]:, :].abs().sum() == 0 and out[..., shape[1]:].abs().sum() == 0
    assert all(s.batch_input_shape == padded and s.pad_shape == padded for s in samples)


def test_masks_are_padded_with_the_images():
    inputs, samples = _batch(800, 1088, with_mask=True)
    _, samples = BatchBucketPad(SIZES, pad_mask=True)(inputs, samples)
    assert all(s.gt_instances.masks.masks.shape[-2:] == (800, 1344) for s in samples)


def test_a_batch_larger_than_every_size_keeps_its_shape_with_one_warning():
    pad = BatchBucketPad([(800, 1344)])
    inputs, samples = _batch(1088, 800)
    with pytest.warns(RuntimeWarning, match='1088x800 batch is larger than every size'):
        out, _ = pad(inputs, samples)
    assert out is inputs
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        pad(inputs, samples)  # warned once already


@pytest.mark.parametrize('sizes', [[], [(800,)], [(0, 800)]])
def test_bad_sizes_are_refused(sizes):
    with pytest.raises(ValueError, match='height, width'):
        BatchBucketPad(sizes)


def test_cuda_graph_config_pads_training_and_test_batches():
    cfg = Config.fromfile(os.path.join(ROOT, 'configs/det/retinanet_mobilemamba_s6_cuda-graph.py'))
    assert cfg.model.backbone.cuda_graph and cfg.model.backbone.cuda_graph_inference
    init_default_scope('mmdet')
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    stock = MODELS.build(Config.fromfile(os.path.join(ROOT, 'configs/det/retinanet_mobilemamba_s6.py')).model
                         .data_preprocessor)
    data = demo_mm_inputs(batch_size=2, image_shapes=[(3, 800, 1067)] * 2, num_items=[2, 2])
    for training in (True, False):
        out, expected = preprocessor(data, training=training), stock(data, training=training)
        assert out['inputs'].shape[-2:] == (800, 1344) and expected['inputs'].shape[-2:] == (800, 1088)
        assert torch.equal(out['inputs'][..., :1088], expected['inputs'])  # normalised, then zero-padded
        assert out['inputs'][..., 1088:].abs().sum() == 0
        for sample, stock_sample in zip(out['data_samples'], expected['data_samples']):
            assert sample.batch_input_shape == sample.pad_shape == (800, 1344)
            assert sample.img_shape == stock_sample.img_shape  # boxes are clipped and rescaled as before
