"""Pure statistics over runs: bootstrap intervals, t-tests, effect sizes, power; no Ray."""
