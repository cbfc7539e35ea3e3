"""configs/{det,seg}/metafile.yml: the published results, in OpenMMLab's metafile layout, cover every
config that reproduces a released model, and the report reads them under mmengine's metric names."""
import glob
import importlib
import os
import re

import yaml
from _toolrun import ROOT

report = importlib.import_module('mmmobilemamba.apis.report')
METAFILES = {task: os.path.join(ROOT, 'configs', task, 'metafile.yml') for task in ('det', 'seg')}
SIZE = re.compile(r'^\d+(\.\d+)?[MG]$')


def _models(task):
    with open(METAFILES[task]) as f:
        return yaml.safe_load(f)['Models']


def test_every_entry_names_an_existing_config_with_params_flops_and_metrics():
    for task in METAFILES:
        for m in _models(task):
            assert m['Config'] == f'configs/{task}/{m["Name"]}.py' and os.path.isfile(os.path.join(ROOT, m['Config']))
            assert m['In Collection'] == 'MobileMamba' and m['Source'].startswith('https://github.com/lewandofskee/')
            assert SIZE.match(str(m['Metadata']['Parameters'])) and SIZE.match(str(m['Metadata']['FLOPs'])), m
            expected_dataset = 'COCO' if task == 'det' else 'ADE20K'
            for result in m['Results']:
                assert result['Dataset'] == expected_dataset
                assert result['Metrics'] and all(0 < v < 100 for v in result['Metrics'].values()), m['Name']


def test_every_reproduction_config_has_an_entry():
    """Configs whose header says they reproduce a release config are exactly the metafile entries."""
    entries = {m['Name'] for task in METAFILES for m in _models(task)}
    reproductions = set()
    for path in glob.glob(os.path.join(ROOT, 'configs', '*', '*.py')):
        with open(path) as f:
            if "Reproduces the official release's" in f.read(2000):
                reproductions.add(os.path.splitext(os.path.basename(path))[0])
    assert reproductions == entries


def test_report_reads_the_metafiles_under_log_keys():
    published = report.read_metafiles(os.path.join(ROOT, 'configs'))
    det = {m['Name']: m for m in _models('det')}
    for name, m in det.items():
        box = next(r['Metrics'] for r in m['Results'] if 'box AP' in r['Metrics'])
        assert published[name]['metrics']['coco/bbox_mAP'] == box['box AP']
        assert published[name]['metrics']['coco/bbox_mAP_l'] == box['box AP_l']
        assert published[name]['params'] == m['Metadata']['Parameters']
    assert 'coco/segm_mAP' in published['mask-rcnn_mobilemamba_b1']['metrics']
    for m in _models('seg'):
        assert published[m['Name']]['metrics']['mIoU'] == m['Results'][0]['Metrics']['mIoU']
    assert report.metric_log_key('mask AP_50') == 'coco/segm_mAP_50' and report.metric_log_key('mAcc') == 'mAcc'


def test_readme_config_table_quotes_the_metafiles():
    """The README's "published" column holds the metafiles' headline numbers, config by config."""
    with open(os.path.join(ROOT, 'README.md')) as f:
        published = {m.group(1): m.group(2).strip() for m in
                     re.finditer(r'^\| `(?:det|seg)/([\w.-]+)\.py` \|.*\| ([^|]*) \|$', f.read(), re.M)}
    for task, label in (('det', 'box AP'), ('seg', 'mIoU')):
        for m in _models(task):
            value = next(r['Metrics'][label] for r in m['Results'] if label in r['Metrics'])
            assert published[m['Name']].startswith(f'{value:.1f} {label}'), (m['Name'], published.get(m['Name']))
