"""Benchmark phases of scripts/bench.py; common.py says how to add one."""
