"""What the tools call: each module is one engine, imported on demand (they pull in mmdet/mmseg).

* :mod:`.config`          -- config / scope / task resolution and the one input-size rule;
* :mod:`.runner_setup`    -- the Runner of tools/train.py and tools/test.py (data root, --toy, checks);
* :mod:`.flops`           -- params / FLOPs of a whole config (tools/analysis_tools/get_flops.py);
* :mod:`.benchmark`       -- speed (tools/analysis_tools/benchmark.py);
* :mod:`.benchmark_cpu`   -- CPU latency of eager / deploy / ONNX Runtime forms;
* :mod:`.benchmark_train` -- training-step speed; :mod:`.benchmark_trunk` -- backbone-only speed;
* :mod:`.onnx_export`     -- ONNX export (tools/deployment/export_onnx.py);
* :mod:`.report`          -- the reproduction report (tools/analysis_tools/report.py);
* :mod:`.erf`             -- effective receptive fields (tools/analysis_tools/visualize_erf.py).
"""
