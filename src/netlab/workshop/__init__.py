"""Workshop support: drop-reason explanations, topology graphs, lab checks."""
