"""Demos: short end-to-end runs that write a run directory with plots and results."""
