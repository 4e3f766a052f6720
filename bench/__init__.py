"""Benchmarks of kb, kept out of the installed package: `python -m bench` (or scripts/bench) runs them."""
