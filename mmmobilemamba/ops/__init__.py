"""Optional GPU kernels."""
