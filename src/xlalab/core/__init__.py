"""Shared machinery: runtime backends, the training loop, io, metrics and plots."""
