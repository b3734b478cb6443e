"""The modules of NB-101's `nasbench.lib` that scripts import: model_spec, config, graph_util."""
