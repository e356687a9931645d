"""One model per device kind, each a symbolic transfer function with a concrete twin."""
