"""Thin entry points: parse a config, call the scheduler, print where results are."""
