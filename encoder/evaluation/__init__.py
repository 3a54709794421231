"""Evaluation: every BENCHMARK.md metric (``metrics``), ``evaluate_encoder`` (``evaluate``), the
report of ``posestyle evaluate`` (``report``, ``plots``) and cost timing (``cost``).

Import the submodule: this ``__init__`` imports nothing, so the metrics load without torch or matplotlib.
"""
