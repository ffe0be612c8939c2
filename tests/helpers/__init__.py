"""Shared helpers of the test suite: tiny models and fits, CLI runs, worker processes, example methods."""
