"""Chapter 4, the NB-101 weight-sharing study, on the shared cluster infrastructure.

config      the three jobs' configs and presets (baselines, correlation study, whole sweep)
benchmark   the benchmark a sweep searches: opened, identified, its sub-spaces
baselines   RS/GS baseline searches as units, and how every search (baseline or WS) is logged
actors      the supernet trainer and the cell evaluator (Ray actors, kept in pools)
correlation the correlation study's units and graph (table 4.3)
sweep       the whole chapter as one graph: baselines, supernets, evaluations, WS searches
report      tables and figures from the units' results
"""
