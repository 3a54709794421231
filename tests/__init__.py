"""The test suite, a package mirroring the source layout (tests/encoder, tests/retrieval, tests/app,
tests/benchmarks); helpers are imported as ``tests.<area>.<module>``, never via ``sys.path``."""
