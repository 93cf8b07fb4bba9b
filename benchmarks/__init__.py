"""Speed benchmarks (run as ``python -m benchmarks.speed``); timing lives here, never in the tests."""
