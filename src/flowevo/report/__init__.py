"""Reports: plots and run directories."""

from flowevo.report.plots import plot_front, plot_history

__all__ = ["plot_front", "plot_history"]
