"""Reports a person reads or prints (DESIGN §10): the shift report."""
