"""mmmobilemamba.apis.report (tools/analysis_tools/report.py) on fake work dirs: metrics parsed from
mmengine logs, paper numbers alongside, benchmark FPS picked up, training curves written."""
import importlib
import json
import os

import pytest

from _toolrun import ROOT

DET = os.path.join(ROOT, 'configs', 'det', 'retinanet_mobilemamba_b1.py')
SSD = os.path.join(ROOT, 'configs', 'det', 'ssdlite_mobilemamba_b1.py')
SEG = os.path.join(ROOT, 'configs', 'seg', 'pspnet_mobilemamba_b4_512x512_80k_ade20k.py')
PNG = b'\x89PNG\r\n\x1a\n'


report = importlib.import_module('mmmobilemamba.apis.report')


def _write_lines(path, records):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        for r in records:
            f.write(json.dumps(r) + '\n')


COCO_DUMP = ("data_root = 'data/coco/'\n"
             "train_dataloader = dict(dataset=dict(data_root='data/coco/', type='CocoDataset'))\n")


@pytest.fixture()
def fake_tree(tmp_path):
    wd = tmp_path / 'work_dirs'
    # epoch-based detector: 2 epochs of 5 iterations, validation after each epoch (step = epoch)
    det = []
    for it in range(1, 11):
        det.append(dict(lr=1e-4, loss=2.0 / it, loss_cls=1.2 / it, loss_bbox=0.8 / it,
                        epoch=(it - 1) // 5 + 1, iter=it, step=it))
        if it % 5 == 0:
            det.append({'coco/bbox_mAP': 0.1 if it == 5 else 0.321, 'coco/bbox_mAP_50': 0.5,
                        'coco/bbox_mAP_l': -1.0, 'coco/bbox_mAP_copypaste': '0.321 0.5 -1.0',
                        'data_time': 0.01, 'time': 0.1, 'step': it // 5})
    _write_lines(str(wd / 'retinanet_mobilemamba_b1' / '20250101_000000' / 'vis_data' / 'scalars.json'), det)
    # the config dump mmengine writes into the work dir names the data the run used
    (wd / 'retinanet_mobilemamba_b1' / 'retinanet_mobilemamba_b1.py').write_text(COCO_DUMP)
    # iteration-based segmentor under a toy/ folder, resumed once (the second run continues)
    seg1 = [dict(loss=3.0 - 0.1 * i, decode_loss_ce=2.0, iter=i, step=i) for i in range(1, 5)]
    seg1.append(dict(aAcc=60.0, mIoU=20.5, mAcc=30.0, step=4))
    seg2 = [dict(loss=2.0 - 0.1 * i, decode_loss_ce=1.5, iter=i, step=i) for i in range(5, 9)]
    seg2.append(dict(aAcc=70.0, mIoU=35.25, mAcc=45.0, step=8))
    seg_wd = wd / 'toy' / 'pspnet_mobilemamba_b4_512x512_80k_ade20k'
    _write_lines(str(seg_wd / '20250102_000000' / 'vis_data' / 'scalars.json'), seg1)
    _write_lines(str(seg_wd / '20250103_000000' / 'vis_data' / 'scalars.json'), seg2)
    # a test run (tools/test.py) in a work dir with another name holding the config dump
    other = wd / 'my_run'
    (other / '20250104_000000').mkdir(parents=True)
    (other / 'retinanet_mobilemamba_b1.py').write_text(COCO_DUMP)
    with open(other / '20250104_000000' / '20250104_000000.json', 'w') as f:
        json.dump({'coco/bbox_mAP': 0.385, 'coco/bbox_mAP_50': 0.59}, f)
    # a quickstart-like run of the same config on the toy data (tools/train.py --toy)
    quick = wd / 'quickstart'
    (quick / '20250105_000000').mkdir(parents=True)
    (quick / 'retinanet_mobilemamba_b1.py').write_text(COCO_DUMP.replace('data/coco/', 'data/toy/coco/'))
    with open(quick / '20250105_000000' / '20250105_000000.json', 'w') as f:
        json.dump({'coco/bbox_mAP': 0.32, 'coco/bbox_mAP_50': 0.607}, f)
    # benchmark results as tools/analysis_tools/benchmark.py writes them
    bench = tmp_path / 'benchmarks'
    bench.mkdir()
    (bench / 'gpu_results.md').write_text(
        '- date: 2025-01-01\n- device: NVIDIA H100 80GB HBM3\n\n'
        '### Det/seg models: tensor-mode forward\n\n'
        '| config | scope | input | precision | BN fused | ms | FPS | peak MiB |\n'
        '|---|---|---|---|---|---|---|---|\n'
        '| retinanet_mobilemamba_b1.py | mmdet | 800x1067 | fp16 | no | 10.0 | 100.0 | 300 |\n'
        '| retinanet_mobilemamba_b1.py | mmdet | 800x1067 | fp32 | no | 25.0 | 40.0 | 500 |\n'
        '| pspnet_mobilemamba_b4_512x512_80k_ade20k.py | mmseg | 512x512 | fp32 | no | 12.5 | 80.0 | 200 |\n')
    return tmp_path


def test_report_table_curves_and_fps(fake_tree):
    out = fake_tree / 'report' / 'report.md'
    rows = report.main([DET, SEG, SSD, '--skip-flops', '--work-dirs', str(fake_tree / 'work_dirs'),
                        '--benchmarks', str(fake_tree / 'benchmarks'), '--out', str(out)])
    text = out.read_text()
    main_text, other_text = text.split('## Toy and other-data runs', 1)
    table = [line for line in main_text.splitlines() if line.startswith('| `')]
    others = [line for line in other_text.splitlines() if line.startswith('| `')]

    det_rows = [line for line in table if line.startswith('| `retinanet_mobilemamba_b1`')]
    assert len(det_rows) == 2  # the named work dir and the one holding the config dump
    trained = next(line for line in det_rows if 'work_dirs/retinanet_mobilemamba_b1' in line.replace(os.sep, '/'))
    cells = [c.strip() for c in trained.strip('|').split('|')]
    header = [c.strip() for c in text.splitlines()[2].strip('|').split('|')]
    row = dict(zip(header, cells))
    assert row['ours'] == '32.1'          # the last validation (epoch 2), in percent
    assert row['paper'] == '39.6'         # release README
    assert row['paper params'] == '27.1M' and row['paper FLOPs'] == '151G'
    assert row['params'] == '' and row['FLOPs'] == ''   # --skip-flops
    assert row['FPS (gpu_results)'].startswith('40.0 (fp32')   # fp32 preferred over fp16
    assert 'val, epoch 2' in row['run'] and '[curves](curves/' in row['run']
    tested = next(line for line in det_rows if 'my_run' in line)
    assert '| 38.5 | 39.6 |' in tested and '(test, 20250104_000000)' in tested
    assert '[curves](' not in tested   # a test run alone has no training curve
    assert '| work_dirs/my_run (test' in tested   # shown relative to the work dirs' parent

    # toy runs never fill the "ours" column: the quickstart-like det run and the seg run under toy/
    assert not any('quickstart' in line or '32.0' in line for line in table)
    quick = next(line for line in others if 'quickstart' in line)
    assert quick.startswith('| `retinanet_mobilemamba_b1` | data/toy/coco |') and '| box AP | 32.0 |' in quick
    seg = next(line for line in table if line.startswith('| `pspnet_mobilemamba_b4'))
    assert '| mIoU |  | 36.9 |' in seg and '80.0 (fp32, 512x512)' in seg
    seg_toy = next(line for line in others if line.startswith('| `pspnet_mobilemamba_b4'))
    assert '| mIoU | 35.2 |' in seg_toy or '| mIoU | 35.3 |' in seg_toy
    assert 'unknown (no config dump)' in seg_toy and 'iter 8' in seg_toy
    ssd = next(line for line in table if line.startswith('| `ssdlite_mobilemamba_b1`'))
    assert '| box AP |  | 24.0 |' in ssd   # no run: our cell empty, paper number present

    # details section lists every metric with the paper's value; -1 (no objects) stays empty
    assert '| coco/bbox_mAP_50 | 50.0 | 59.8 |' in text
    assert '| coco/bbox_mAP_l |  | 53.9 |' in text
    assert 'NVIDIA H100' in text

    pngs = sorted((fake_tree / 'report' / 'curves').iterdir())
    assert len(pngs) == 2
    for p in pngs:
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 5000
    assert len(rows) == 6


def test_run_parsing(fake_tree):
    runs = report.find_runs(str(fake_tree / 'work_dirs'))
    det = runs[str(fake_tree / 'work_dirs' / 'retinanet_mobilemamba_b1')][0]
    assert [r['_iter'] for r in det['val']] == [5, 10]   # epochs mapped to their last iteration
    seg_wd = str(fake_tree / 'work_dirs' / 'toy' / 'pspnet_mobilemamba_b4_512x512_80k_ade20k')
    chain = report.latest_training(runs[seg_wd])
    assert [r['timestamp'] for r in chain] == ['20250102_000000', '20250103_000000']   # resumed
    # a fresh restart at iteration 1 starts a new training
    restart = dict(runs[seg_wd][0], timestamp='20250105_000000')
    assert [r['timestamp'] for r in report.latest_training(runs[seg_wd] + [restart])] == ['20250105_000000']
    assert report.match_work_dirs('retinanet_mobilemamba_b1', runs) == sorted(
        [str(fake_tree / 'work_dirs' / name) for name in ('retinanet_mobilemamba_b1', 'my_run', 'quickstart')])
    assert report.to_percent('coco/bbox_mAP', 0.25) == 25.0 and report.to_percent('mIoU', 36.9) == 36.9
    assert report.to_percent('coco/bbox_mAP_l', -1.0) is None
