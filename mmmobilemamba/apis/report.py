"""Reproduction report: one markdown table of every config's params, FLOPs, evaluation results
and benchmark FPS next to the numbers the MobileMamba authors published, plus training curves.

    python tools/analysis_tools/report.py                                   # all configs under configs/
    python tools/analysis_tools/report.py configs/det/retinanet_mobilemamba_b1.py configs/seg/*.py
    python tools/analysis_tools/report.py --skip-flops --out work_dirs/report/report.md

Sources:

* params / FLOPs: ``mmmobilemamba.apis.flops.config_complexity`` (the whole model on
  one image: detectors 1280x800, SSD its ``input_size``, segmentors their crop, 512x512);
  ``--skip-flops`` leaves these columns empty (building and tracing every model takes minutes).
* results: every run directory ``WORK_DIRS/**/<timestamp>/`` whose work dir belongs to a
  config: the work dir is named like the config (``work_dirs/<name>``, ``work_dirs/toy/<name>``)
  or holds the config dump ``<name>.py`` that mmengine writes there. Validation metrics come
  from ``<timestamp>/vis_data/scalars.json``, test metrics (``tools/test.py``) from
  ``<timestamp>/<timestamp>.json``; the table shows the most recent evaluation. COCO metrics
  (fractions in the logs) are shown in percent like mIoU. A result goes into the main table only
  if its run used the config's own dataset (the config dump names the config's data root); toy
  and other-data runs (e.g. the quickstart) go into a separate table labelled with their data.
* FPS: markdown tables in ``BENCHMARKS/*.md`` that have ``config`` and ``FPS`` columns (as
  ``tools/analysis_tools/benchmark.py --sections det`` writes them), and ``BENCHMARKS/*.json`` lists of
  records with ``config`` and ``fps`` keys. One column per file, fp32 rows preferred.
* paper: ``configs/*/metafile.yml`` (the official release README, github.com/lewandofskee/MobileMamba,
  "Downstream Results"), for the configs that reproduce a released model; empty elsewhere.

Training curves (loss terms and the evaluation metric against the iteration) go to one PNG per
run directory under ``<out dir>/curves/`` and are linked from the report.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
from collections import OrderedDict

from .config import ROOT, load_config

TIMESTAMP = re.compile(r'^\d{8}_\d{6}$')

# ------------------------------------------------------------------------------ published numbers
_M, _G = 1e6, 1e9
# metafile metric names -> mmengine's log keys
_METAFILE_PREFIXES = (('box AP', 'coco/bbox_mAP'), ('mask AP', 'coco/segm_mAP'))


def metric_log_key(name):
    """``'box AP_50'`` -> ``'coco/bbox_mAP_50'``; mmseg's names (``mIoU``, ...) are the same in both."""
    for prefix, key in _METAFILE_PREFIXES:
        if name.startswith(prefix):
            return key + name[len(prefix):]
    return name


def read_metafiles(configs_dir):
    """{config name: dict(model, params, flops, metrics (log keys, %), source)} of the published
    results in ``configs_dir/*/metafile.yml`` (OpenMMLab's metafile layout)."""
    import yaml
    published = {}
    for path in sorted(glob.glob(osp.join(configs_dir, '*', 'metafile.yml'))):
        with open(path) as f:
            models = (yaml.safe_load(f) or {}).get('Models') or []
        for m in models:
            meta = m.get('Metadata') or {}
            metrics = {}
            for result in m.get('Results') or []:
                metrics.update({metric_log_key(k): float(v) for k, v in (result.get('Metrics') or {}).items()})
            published[config_name(m['Config'])] = dict(
                model=meta.get('Model', m['Name']), params=str(meta.get('Parameters', '')),
                flops=str(meta.get('FLOPs', '')), metrics=metrics, source=m.get('Source', ''))
    return published


# headline metrics of the table: (log key, column label); COCO values are fractions in the logs
HEADLINE = (('coco/bbox_mAP', 'box AP'), ('coco/segm_mAP', 'mask AP'), ('mIoU', 'mIoU'))
EVAL_KEY = re.compile(r'^(coco/|pascal_voc/|aAcc$|mIoU$|mAcc$|mDice$|mFscore$|mPrecision$|mRecall$)')


def to_percent(key, value):
    """Log value -> percent (COCO / VOC logs hold fractions, mmseg percentages); None if n/a."""
    if value is None or not isinstance(value, (int, float)) or value != value or value < 0:
        return None   # COCO writes -1 when an area range has no objects
    if key.startswith(('coco/', 'pascal_voc/')) and not key.endswith('_copypaste'):
        return 100.0 * value
    return float(value)


# ------------------------------------------------------------------------------------- configs
def config_name(path):
    return osp.splitext(osp.basename(path))[0]


def find_configs(paths, configs_dir):
    if not paths:
        paths = sorted(p for p in glob.glob(osp.join(configs_dir, '**', '*.py'), recursive=True)
                       if '_base_' not in p.split(os.sep))
    out = []
    for p in paths:
        if osp.isdir(p):
            out += find_configs(None, p)
        elif p.endswith('.py'):
            out.append(p)
    return out


def config_info(path):
    """Task, dataset and scope of a config (without building the model)."""
    try:
        cfg = load_config(path)
    except Exception as e:  # noqa: BLE001  (report what failed, keep going)
        return dict(scope='?', dataset='?', error=f'{type(e).__name__}: {e}')
    scope = cfg.get('default_scope', '?')
    ds = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    while isinstance(ds, dict) and 'dataset' in ds and 'type' in ds and 'Repeat' in str(ds['type']):
        ds = ds['dataset']
    ds_type = str(ds.get('type', '?')) if isinstance(ds, dict) else '?'
    dataset = {'CocoDataset': 'COCO', 'ADE20KDataset': 'ADE20K'}.get(ds_type.split('.')[-1], ds_type)
    roi_head = cfg.model.get('roi_head') or {}
    from .runner_setup import config_data_roots
    return dict(scope=scope, dataset=dataset, model=cfg.model.get('type', '?'), data_roots=config_data_roots(cfg),
                has_mask=bool(roi_head.get('mask_head')) if isinstance(roi_head, dict) else False)


def complexity(path):
    """(params, flops, shape) via the shared counter; (None, None, None, error) on failure."""
    try:
        from .flops import config_complexity
        r = config_complexity(path)
        return dict(params=r['params'], flops=r['flops'], shape=tuple(r['shape']))
    except Exception as e:  # noqa: BLE001
        return dict(error=f'{type(e).__name__}: {str(e)[:200]}')


# ---------------------------------------------------------------------------------------- logs
def read_json_lines(path):
    """Records of an mmengine json log: one JSON object per line, or one JSON document."""
    records = []
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return records
    try:
        doc = json.loads(text)
        return [doc] if isinstance(doc, dict) else [r for r in doc if isinstance(r, dict)]
    except json.JSONDecodeError:
        pass
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            records.append(rec)
    return records


def is_eval(record):
    return any(EVAL_KEY.match(k) for k in record)


def parse_run(run_dir):
    """Train records, validation records (with their iteration) and test records of one run."""
    ts = osp.basename(run_dir)
    scalars = read_json_lines(osp.join(run_dir, 'vis_data', 'scalars.json'))
    train = [r for r in scalars if 'loss' in r or any(k.startswith('loss') for k in r)]
    val = [r for r in scalars if is_eval(r)]
    # epoch-based loops log validation at step=epoch: map it to the last iteration of that epoch
    last_iter_of_epoch = {}
    for r in train:
        if 'epoch' in r and 'iter' in r:
            last_iter_of_epoch[r['epoch']] = max(last_iter_of_epoch.get(r['epoch'], 0), r['iter'])
    epoch_based = bool(last_iter_of_epoch)
    for r in val:
        step = r.get('step', 0)
        r['_iter'] = last_iter_of_epoch.get(step, step) if epoch_based else step
        r['_label'] = f'val, {"epoch" if epoch_based else "iter"} {step}'
    test = [r for r in read_json_lines(osp.join(run_dir, f'{ts}.json')) if is_eval(r)]
    for r in test:
        r['_label'] = 'test'
    return dict(dir=run_dir, timestamp=ts, train=train, val=val, test=test)


def find_runs(work_dirs_root):
    """{work dir: [run dicts, oldest first]} for every ``<timestamp>`` dir with logs."""
    runs = {}
    if not osp.isdir(work_dirs_root):
        return runs
    for dirpath, dirnames, _ in os.walk(work_dirs_root):
        for d in list(dirnames):
            if TIMESTAMP.match(d):
                run_dir = osp.join(dirpath, d)
                if osp.isfile(osp.join(run_dir, 'vis_data', 'scalars.json')) or \
                        osp.isfile(osp.join(run_dir, f'{d}.json')):
                    runs.setdefault(dirpath, []).append(parse_run(run_dir))
                dirnames.remove(d)  # nothing to find inside a run dir
    for work_dir in runs:
        runs[work_dir].sort(key=lambda r: r['timestamp'])
    return runs


def match_work_dirs(name, runs):
    """Work dirs of config ``name``: named like it, or holding its config dump ``name.py``."""
    return sorted(wd for wd in runs
                  if osp.basename(osp.normpath(wd)) == name or osp.isfile(osp.join(wd, f'{name}.py')))


def run_data_roots(work_dir, name):
    """The data roots in the config dump ``WORK_DIR/NAME.py`` that mmengine writes for every run
    (empty without a dump)."""
    dump = osp.join(work_dir, f'{name}.py')
    if not osp.isfile(dump):
        return set()
    with open(dump) as f:
        return {root.rstrip('/') for root in re.findall(r"data_root\s*=\s*'([^']*)'", f.read())}


def latest_eval(run_list):
    """The most recent evaluation record over a work dir's runs (test beats val of the same run)."""
    best = None
    for run in run_list:
        for rec in run['val'] + run['test']:
            best = (run, rec)   # runs are oldest first, val before test
    return best


# ------------------------------------------------------------------------------------ benchmarks
def _md_tables(text):
    """Yield (header, rows) of every markdown table in ``text``."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith('|') and i + 1 < len(lines) and re.match(r'^\|?\s*:?-{2,}', lines[i + 1].strip()):
            header = [c.strip() for c in line.strip('|').split('|')]
            rows = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith('|'):
                rows.append([c.strip() for c in lines[i].strip().strip('|').split('|')])
                i += 1
            yield header, rows
        else:
            i += 1


def _float(s):
    try:
        v = float(str(s).replace(',', ''))
        return v if v == v else None
    except ValueError:
        return None


def read_benchmarks(bench_dir):
    """{source file stem: {config name: [(fps, precision, input, fused)]}} and device notes."""
    results, devices = OrderedDict(), {}
    for path in sorted(glob.glob(osp.join(bench_dir, '*.md')) + glob.glob(osp.join(bench_dir, '*.json'))):
        src = osp.basename(path)
        per_cfg = {}
        if path.endswith('.md'):
            with open(path) as f:
                text = f.read()
            m = re.search(r'^\s*[-*]\s*(?:device|GPU)s?:\s*(.+)$', text, re.M | re.I)
            if m:
                devices[src] = m.group(1).split(' (')[0].split(',')[0].strip()
            for header, rows in _md_tables(text):
                low = [h.lower() for h in header]
                if 'config' not in low or 'fps' not in low:
                    continue
                ci, fi = low.index('config'), low.index('fps')
                pi = low.index('precision') if 'precision' in low else None
                ii = low.index('input') if 'input' in low else None
                bi = low.index('bn fused') if 'bn fused' in low else None
                for row in rows:
                    if len(row) <= max(ci, fi):
                        continue
                    fps = _float(row[fi])
                    if fps is None:
                        continue
                    per_cfg.setdefault(config_name(row[ci]), []).append(
                        (fps, row[pi] if pi is not None else '', row[ii] if ii is not None else '',
                         row[bi] if bi is not None else ''))
        else:
            try:
                with open(path) as f:
                    doc = json.load(f)
            except (OSError, json.JSONDecodeError):
                continue
            recs = doc.get('results', doc.get('det', [])) if isinstance(doc, dict) else doc
            if isinstance(doc, dict) and doc.get('device'):
                devices[src] = str(doc['device'])
            for r in recs if isinstance(recs, list) else []:
                if not isinstance(r, dict) or 'config' not in r:
                    continue
                fps = _float(r.get('fps', r.get('FPS')))
                if fps is not None:
                    per_cfg.setdefault(config_name(str(r['config'])), []).append(
                        (fps, str(r.get('precision', '')), str(r.get('input', '')), str(r.get('fused', ''))))
        if per_cfg:
            results[src] = per_cfg
    return results, devices


def fps_cell(entries):
    """fp32 unfused if present, else the first entry; with the input size."""
    if not entries:
        return ''

    def rank(e):
        return (e[1] not in ('fp32', ''), e[3] not in ('no', ''))
    fps, prec, inp, fused = sorted(entries, key=rank)[0]
    extra = ', '.join(x for x in (prec, inp, 'BN fused' if fused == 'yes' else '') if x)
    return f'{fps:.1f}' + (f' ({extra})' if extra else '')


# ---------------------------------------------------------------------------------------- curves
def latest_training(run_list):
    """The runs of the most recent training: resumed runs continue the iteration count and are
    chained; a run that starts again at or below the previous one's last iteration starts a
    new training. Runs without training records (test runs) are skipped."""
    chain, last = [], None
    for run in run_list:
        iters = [r.get('iter', r.get('step', 0)) for r in run['train']]
        if not iters:
            continue
        if last is not None and min(iters) <= last:
            chain = []
        chain.append(run)
        last = max(iters)
    return chain


def plot_curves(run_list, out_png, title):
    """Loss terms and evaluation metrics of the latest training against the iteration; returns
    True if written."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    chain = latest_training(run_list)
    train = [r for run in chain for r in run['train']]
    val = [r for run in chain for r in run['val']]
    if chain:
        title += ' (' + ', '.join(run['timestamp'] for run in chain) + ')'
    if not train and not val:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    loss_keys = sorted({k for r in train for k in r if k.startswith('loss') and isinstance(r[k], (int, float))},
                       key=lambda k: (k != 'loss', k))
    for k in loss_keys:
        pts = sorted((r.get('iter', r.get('step', 0)), r[k]) for r in train if k in r)
        if pts:
            ax.plot(*zip(*pts), label=k, lw=2 if k == 'loss' else 1)
    ax.set_xlabel('iteration')
    ax.set_ylabel('loss')
    ax.set_title('training loss')
    if loss_keys:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[1]
    metric_keys = [k for k, _ in HEADLINE if any(k in r for r in val)]
    if not metric_keys:   # other metrics: plot whatever evaluation keys there are (at most 4)
        metric_keys = sorted({k for r in val for k in r if EVAL_KEY.match(k)
                              and isinstance(r[k], (int, float))})[:4]
    for k in metric_keys:
        pts = sorted((r['_iter'], to_percent(k, r[k])) for r in val if to_percent(k, r.get(k)) is not None)
        if pts:
            ax.plot(*zip(*pts), marker='o', label=k)
    ax.set_xlabel('iteration')
    ax.set_ylabel('%')
    ax.set_title('evaluation' if metric_keys else 'evaluation (none logged)')
    if metric_keys:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(out_png)), exist_ok=True)
    fig.savefig(out_png, dpi=90)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------------------- report
def fmt_count(n, unit):
    """27.1e6 -> '27.1M', 151e9 -> '151G', 4.7e9 -> '4.7G' (3 significant digits)."""
    if n is None:
        return ''
    return f'{n / (_M if unit == "M" else _G):#.3g}'.rstrip('.') + unit


def fmt_metric(v):
    return '' if v is None else f'{v:.1f}'


def headline(keys_values, metrics_of):
    """'box AP / mask AP' style labels and values for the headline metrics present."""
    labels, values = [], []
    for key, label in HEADLINE:
        if key in keys_values:
            labels.append(label)
            values.append(metrics_of(key))
    return labels, values


def build_rows(configs, runs, benchmarks, skip_flops, published):
    """One row per (config, work dir); ``row['on_config_data']``: whether the run's config dump
    names the data roots of the config itself (else a toy or other-data run)."""
    rows = []
    for path in configs:
        name = config_name(path)
        info = config_info(path)
        cx = {} if skip_flops else complexity(path)
        paper = published.get(name, {})
        fps = [fps_cell(per_cfg.get(name, [])) for per_cfg in benchmarks.values()]
        work_dirs = match_work_dirs(name, runs)
        base = dict(config=path, name=name, info=info, cx=cx, paper=paper, fps=fps)
        config_roots = info.get('data_roots') or set()
        found = []
        for wd in work_dirs:
            roots = run_data_roots(wd, name)
            found.append(dict(base, work_dir=wd, eval=latest_eval(runs[wd]), runs=runs[wd], data_roots=roots,
                              on_config_data=bool(roots) and roots == config_roots))
        if not any(r['on_config_data'] for r in found):
            rows.append(dict(base, work_dir=None, eval=None, runs=[], data_roots=set(), on_config_data=True))
        rows += found
    return rows


def rel(path, start):
    """``path`` relative to ``start`` when inside it, else absolute."""
    path = osp.abspath(path)
    start = osp.abspath(start)
    return osp.relpath(path, start) if path.startswith(start + os.sep) else path


def run_cell(r, base, curves, out_dir):
    """Run dir (relative to ``base``), the evaluation's label and timestamp, a link to its curves."""
    run = rel(r['work_dir'], base)
    if r['eval']:
        run_info, rec = r['eval']
        run += f' ({rec["_label"]}, {run_info["timestamp"]})'
    if r['work_dir'] in curves:
        run += f' [curves]({rel(curves[r["work_dir"]], out_dir)})'
    return run


def other_data_table(rows, base, curves, out_dir):
    """Markdown lines of the runs that did not use the config's own dataset (toy / smoke runs)."""
    others = [r for r in rows if not r['on_config_data']]
    if not others:
        return []
    lines = ['', "## Toy and other-data runs (not on the config's dataset: not comparable with the paper)", '',
             '| config | data root of the run | metric | result | run |', '|---|---|---|---|---|']
    for r in others:
        rec = r['eval'][1] if r['eval'] else {}
        labels, values = headline(set(rec), lambda k: fmt_metric(to_percent(k, rec.get(k))))
        data = ', '.join(sorted(r['data_roots'])) or 'unknown (no config dump)'
        lines.append(f'| `{r["name"]}` | {data} | {" / ".join(labels)} | {" / ".join(values)} | '
                     f'{run_cell(r, base, curves, out_dir)} |')
    return lines


def render(rows, benchmarks, devices, out_path, curves, skip_flops, work_dirs_root=None, bench_dir=None):
    """Write the markdown report; run dirs are shown relative to the parent of ``work_dirs_root``."""
    out_dir = osp.dirname(osp.abspath(out_path))
    base = osp.dirname(osp.abspath(work_dirs_root)) if work_dirs_root else ROOT
    fps_cols = [f'FPS ({osp.splitext(src)[0]})' for src in benchmarks]
    header = ['config', 'data', 'params', 'paper params', 'FLOPs', 'paper FLOPs', 'metric', 'ours',
              'paper'] + fps_cols + ['run']
    lines = ['# MobileMamba reproduction report', '',
             '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for r in (r for r in rows if r['on_config_data']):
        paper_metrics = r['paper'].get('metrics', {})
        ours_rec = r['eval'][1] if r['eval'] else {}
        keys = set(paper_metrics) | set(ours_rec)
        labels, ours = headline(keys, lambda k: fmt_metric(to_percent(k, ours_rec.get(k))))
        _, paper_vals = headline(keys, lambda k: fmt_metric(paper_metrics.get(k)))
        if not labels:  # nothing logged or published: the task's usual metrics, empty
            labels = (['mIoU'] if r['info'].get('scope') == 'mmseg' else
                      ['box AP', 'mask AP'] if r['info'].get('has_mask') else ['box AP'])
            ours = paper_vals = [''] * len(labels)
        cx = r['cx']
        flops = fmt_count(cx.get('flops'), 'G')
        if flops and cx.get('shape'):
            flops += f' @{cx["shape"][0]}x{cx["shape"][1]}'
        if cx.get('error'):
            flops = 'failed'
        run = run_cell(r, base, curves, out_dir) if r['work_dir'] else ''
        cells = [f'`{r["name"]}`', r['info'].get('dataset', ''),
                 fmt_count(cx.get('params'), 'M'), r['paper'].get('params', ''),
                 flops, r['paper'].get('flops', ''),
                 ' / '.join(labels), ' / '.join(ours) if any(ours) else '',
                 ' / '.join(paper_vals) if any(paper_vals) else ''] + r['fps'] + [run]
        lines.append('| ' + ' | '.join(cells) + ' |')

    lines += ['', 'Notes:', '',
              '- paper: `configs/*/metafile.yml`, the official release README (github.com/lewandofskee/MobileMamba, '
              '"Downstream Results"); empty where the authors published nothing for that config.',
              "- ours: the latest evaluation of a run on the config's own dataset (its config dump names the "
              "config's data root); COCO mAP and mIoU in %. Runs on other data (toy data, smoke runs) are "
              'in the next table, not here.',
              '- params / FLOPs: whole model, `mmmobilemamba.apis.flops.config_complexity` '
              '(fvcore convention: 1 multiply-add = 1 FLOP), at the input size shown.'
              + (' Skipped (--skip-flops).' if skip_flops else '')]
    for src in benchmarks:
        dev = devices.get(src)
        where = osp.join(rel(bench_dir, ROOT), src) if bench_dir else src
        lines.append(f'- FPS ({osp.splitext(src)[0]}): from `{where}`'
                     + (f', device {dev}' if dev else '') + '; batch 1, fp32 row where present.')
    lines += other_data_table(rows, base, curves, out_dir)
    errors = [(r['name'], r['cx']['error']) for r in rows if r['cx'].get('error')]
    errors += [(r['name'], r['info']['error']) for r in rows if r['info'].get('error')]
    if errors:
        lines += ['', 'Errors:', ''] + [f'- `{n}`: {e}' for n, e in OrderedDict(errors).items()]

    detail = [r for r in rows if r['eval'] and r['on_config_data']]
    if detail:
        lines += ['', '## All metrics of the latest evaluation', '']
        for r in detail:
            run_info, rec = r['eval']
            keys = [k for k in rec if EVAL_KEY.match(k) and not k.endswith('_copypaste')]
            paper_metrics = r['paper'].get('metrics', {})
            lines += [f'`{r["name"]}` — `{rel(run_info["dir"], base)}` ({rec["_label"]})', '',
                      '| metric | ours | paper |', '|---|---|---|']
            for k in keys:
                lines.append(f'| {k} | {fmt_metric(to_percent(k, rec.get(k)))} | '
                             f'{fmt_metric(paper_metrics.get(k))} |')
            lines.append('')
    text = '\n'.join(lines) + '\n'
    os.makedirs(out_dir, exist_ok=True)
    with open(out_path, 'w') as f:
        f.write(text)
    return text


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument('configs', nargs='*', help='config files or folders (default: all under --configs-dir)')
    p.add_argument('--configs-dir', default=osp.join(ROOT, 'configs'))
    p.add_argument('--work-dirs', default=osp.join(ROOT, 'work_dirs'), help='root of the work dirs')
    p.add_argument('--benchmarks', default=osp.join(ROOT, 'benchmarks'), help='folder of benchmark results')
    p.add_argument('--out', default=osp.join(ROOT, 'work_dirs', 'report', 'report.md'))
    p.add_argument('--skip-flops', action='store_true', help='do not build the models (fast)')
    p.add_argument('--no-curves', action='store_true', help='do not plot training curves')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import mmmobilemamba  # noqa: F401  (registers the models for the complexity count)
    configs = find_configs(args.configs, args.configs_dir)
    if not configs:
        raise SystemExit(f'no configs found ({args.configs or args.configs_dir})')
    runs = find_runs(args.work_dirs)
    benchmarks, devices = read_benchmarks(args.benchmarks)
    rows = build_rows(configs, runs, benchmarks, args.skip_flops, read_metafiles(args.configs_dir))
    curves = {}
    if not args.no_curves:
        curve_dir = osp.join(osp.dirname(osp.abspath(args.out)), 'curves')
        for r in rows:
            wd = r['work_dir']
            if wd and wd not in curves:
                slug = re.sub(r'[^A-Za-z0-9_.-]+', '_', rel(wd, args.work_dirs)).strip('_') or r['name']
                png = osp.join(curve_dir, f'{slug}.png')
                if plot_curves(r['runs'], png, rel(wd, osp.dirname(osp.abspath(args.work_dirs)))):
                    curves[wd] = png
    text = render(rows, benchmarks, devices, args.out, curves, args.skip_flops, args.work_dirs, args.benchmarks)
    print(text)
    print(f'report written to {args.out}' + (f', {len(curves)} curve plot(s)' if curves else ''))
    return rows

