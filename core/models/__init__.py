"""PyTorch models: the NB-101 network (and, later, its supernet and the other tasks' models)."""
