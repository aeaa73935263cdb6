"""Benchmarks: the build against its numpy and stingray anchors, ratios measured in one run."""
