#!/usr/bin/env python
"""Evaluate a checkpoint of a detector (mmdet config) or segmentor (mmseg config) with mmengine's
Runner: COCO mAP (mmdet CocoMetric) or mIoU (mmseg IoUMetric), as the config's test_evaluator says.

    python tools/test.py configs/det/retinanet_mobilemamba_s6.py work_dirs/retinanet_mobilemamba_s6/epoch_12.pth
    python tools/test.py CONFIG CKPT --out results.pkl --show-dir vis      # dump predictions, draw them
    python tools/test.py CONFIG CKPT --toy                                 # on the toy data (make_toy_data.py)
    python tools/test.py CONFIG CKPT --deploy                              # backbone in deploy mode (faster)
    bash tools/dist_test.sh CONFIG CKPT 8

--toy and --data-root change the data exactly as in tools/train.py (same image sizes).
"""
import argparse
import os

from mmengine.config import DictAction

from mmmobilemamba.apis import runner_setup as rs
from mmmobilemamba.utils.compat import logger_hook_dumps_on_rank0_only


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='config file the checkpoint was trained with')
    p.add_argument('checkpoint', help='checkpoint file (.pth)')
    p.add_argument('--work-dir', help='where the evaluation log and metrics json go '
                   '(default: work_dirs/CONFIG_NAME, with --toy work_dirs/toy/CONFIG_NAME)')
    p.add_argument('--out', metavar='FILE.pkl', help='also dump the raw predictions to this pickle file')
    p.add_argument('--show-dir', metavar='DIR',
                   help='draw predictions next to the ground truth into images under DIR '
                   '(det: DIR is relative to WORK_DIR/TIMESTAMP; seg: DIR/vis_data/vis_image)')
    p.add_argument('--data-root', metavar='DIR', help="replace the config's data_root everywhere")
    p.add_argument('--toy', action='store_true', help='evaluate on the toy data, small images (as train.py --toy)')
    p.add_argument('--toy-size', type=int, default=rs.TOY_SIZE,
                   help=f"--toy: test short side in px (default {rs.TOY_SIZE}; 0: the config's sizes)")
    p.add_argument('--deploy', action='store_true',
                   help="evaluate with the backbone in deploy mode (MobileMamba's switch_to_deploy(): BN folded, "
                        'inference convolutions): the same results up to float rounding, faster')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                   help='override config entries (applied last)')
    rs.add_runner_arguments(p, 'tools/dist_test.sh')
    args = p.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if args.out and not args.out.endswith(('.pkl', '.pickle')):
        p.error('--out must be a .pkl or .pickle file')
    return args


def build_config(args, log=print):
    cfg = rs.load_config(args.config)
    rs.check_checkpoint(args.checkpoint)
    task = rs.detect_task(cfg)
    rs.register_modules(task)
    rs.apply_command_line(cfg, args, task, log=log, training=False)
    rs.trust_checkpoints(args.trust_checkpoint)
    cfg.load_from = args.checkpoint
    # weights come from the checkpoint: never read the backbone's ImageNet file
    backbone = cfg.get('model', {}).get('backbone')
    if isinstance(backbone, dict) and 'init_cfg' in backbone:
        backbone['init_cfg'] = None

    if args.show_dir:
        hook = cfg.default_hooks.get('visualization')
        if not hook:
            raise rs.ToolError('--show-dir: the config has no default_hooks.visualization')
        hook['draw'] = True
        if task == 'det':
            hook['test_out_dir'] = args.show_dir
        else:  # mmseg's hook draws every `interval`-th image into the visualizer's save_dir
            hook['interval'] = 1
            cfg.visualizer['save_dir'] = args.show_dir

    rs.check_data(cfg, task, ['test_dataloader'], toy=args.toy)
    return cfg, task


def main(argv=None):
    args = parse_args(argv)
    cfg, task = build_config(args)
    runner = rs.build_runner(cfg, args.launcher)
    with rs.checkpoint_errors_as_messages():
        rs.check_checkpoint_matches(runner, args.checkpoint)
    logger_hook_dumps_on_rank0_only(runner)
    if args.deploy:
        rs.deploy_backbone_after_loading(runner)
    if args.out:
        if task == 'det':
            from mmdet.evaluation import DumpDetResults
            runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
        else:
            from mmengine.evaluator import DumpResults
            runner.test_evaluator.metrics.append(DumpResults(out_file_path=args.out))
    with rs.checkpoint_errors_as_messages():
        runner.test()


if __name__ == '__main__':
    main()
