"""Lambda entry points only: each module is one function's handler, built by the composition root."""
