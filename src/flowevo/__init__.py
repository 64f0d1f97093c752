"""flowevo: residual-space evolutionary optimisation with conditional flow-matching models."""

__version__ = "0.1.0"
