"""Front-ends: where command lines come from and where output goes."""
