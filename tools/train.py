#!/usr/bin/env python
"""Train a detector (mmdet config) or a segmentor (mmseg config) with mmengine's Runner.

    python tools/train.py configs/det/retinanet_mobilemamba_s6.py
    python tools/train.py configs/seg/pspnet_mobilemamba_s6_512x512_80k_ade20k.py --data-root /data/ade/ADEChallengeData2016
    python tools/train.py CONFIG --resume                  # continue from WORK_DIR/last_checkpoint
    python tools/train.py CONFIG --toy                     # toy data, 20 iterations, small images (CPU)
    bash tools/dist_train.sh CONFIG 8                      # 8 processes (GPUs, or CPU with gloo)

--toy (after `python tools/dataset_converters/make_toy_data.py`) changes, before --cfg-options are applied:
data root -> data/toy/coco/ or data/toy/ade/ADEChallengeData2016; every image size (Resize
scales, crop sizes, pads, the preprocessor's size) x f so that the test short side is
--toy-size px; an IterBasedTrainLoop (InfiniteSampler) of --toy-iters iterations, lr warm-up (LinearLR from
0.1x) over the first half, validation and a checkpoint at the end; logs every iteration;
batch 2 (test 1), num_workers 0; seed 0 unless the config sets one; backbone weights that are
not on disk are dropped (trained from scratch, with norm_eval=False so that BatchNorm learns its
statistics); work dir work_dirs/toy/CONFIG_NAME.
"""
import argparse
import os
import os.path as osp

from mmengine.config import DictAction

from mmmobilemamba.apis import runner_setup as rs


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='config file (configs/det/*.py or configs/seg/*.py)')
    p.add_argument('--work-dir', help='where logs and checkpoints go '
                   '(default: work_dirs/CONFIG_NAME, with --toy work_dirs/toy/CONFIG_NAME)')
    p.add_argument('--resume', nargs='?', const='auto', metavar='CKPT',
                   help='resume training (weights, optimizer, schedulers, iteration) from CKPT, '
                   'or, without CKPT, from the last checkpoint in the work dir')
    p.add_argument('--amp', action='store_true', help='mixed precision (needs a CUDA GPU)')
    p.add_argument('--auto-scale-lr', action='store_true',
                   help="scale the lr linearly with the total batch size (config's auto_scale_lr)")
    p.add_argument('--data-root', metavar='DIR',
                   help="replace the config's data_root everywhere (datasets and evaluator files)")
    p.add_argument('--toy', action='store_true',
                   help='run on the toy data (python tools/dataset_converters/make_toy_data.py) with a short schedule '
                   'and small images, so a CPU run takes minutes (what it changes: above)')
    p.add_argument('--toy-iters', type=int, default=rs.TOY_ITERS, help=f'--toy: training iterations (default {rs.TOY_ITERS})')
    p.add_argument('--toy-size', type=int, default=rs.TOY_SIZE,
                   help=f"--toy: test short side in px (default {rs.TOY_SIZE}; 0: the config's sizes)")
    p.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                   help='override config entries, e.g. train_dataloader.batch_size=8 '
                   "model.backbone.init_cfg=None (applied last)")
    rs.add_runner_arguments(p, 'tools/dist_train.sh')
    args = p.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_config(args, log=print):
    cfg = rs.load_config(args.config)
    task = rs.detect_task(cfg)
    rs.register_modules(task)
    rs.apply_command_line(cfg, args, task, log=log, iters=args.toy_iters)
    rs.trust_checkpoints(args.trust_checkpoint)

    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise rs.ToolError('--amp needs a CUDA GPU (mmengine mixed precision does not run on CPU); '
                               'drop --amp')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if not cfg.get('auto_scale_lr', {}).get('base_batch_size'):
            raise rs.ToolError('--auto-scale-lr: the config has no auto_scale_lr.base_batch_size')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
        if not osp.isfile(osp.join(cfg.work_dir, 'last_checkpoint')):
            log(f'--resume: no checkpoint in {cfg.work_dir} yet, starting from the beginning')
    elif args.resume:
        rs.check_checkpoint(args.resume, '--resume checkpoint')
        cfg.resume, cfg.load_from = True, args.resume

    loaders = ['train_dataloader'] + (['val_dataloader'] if cfg.get('val_cfg') and cfg.get('val_dataloader') else [])
    rs.check_data(cfg, task, loaders, toy=args.toy)
    rs.check_pretrained(cfg)  # the Runner initialises weights before it loads / resumes
    return cfg, task


def main(argv=None):
    args = parse_args(argv)
    cfg, _ = build_config(args)
    with rs.checkpoint_errors_as_messages():
        rs.build_runner(cfg, args.launcher).train()


if __name__ == '__main__':
    main()
