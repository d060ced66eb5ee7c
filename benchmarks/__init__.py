"""Benchmarks: commands that print ratios against the engine's raw speed. Never pass/fail tests."""
