"""Weight sharing on NB-101: supernet training recipe, cell sampling, proxy evaluation (no Ray)."""
