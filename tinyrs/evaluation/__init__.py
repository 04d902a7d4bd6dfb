"""Evaluation on the paper's benchmarks."""
