"""Optimisers behind one ask/tell interface (random search, greedy search, (1+1)-ES); no Ray."""
