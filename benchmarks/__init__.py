"""Benchmarks of the product, apart from the library code they measure.

``encoder_bench`` (``posestyle bench encoders``) and ``retrieval_bench`` (``posestyle bench retrieval``)
write the reports under ``docs/benchmarks``; only ``app.cli.bench_commands`` imports them, lazily.
"""
