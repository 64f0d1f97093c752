"""Reports: plots, image grids and static HTML pages."""

from flowevo.report.grids import image_grid
from flowevo.report.html import Report
from flowevo.report.plots import plot_front, plot_history, save_figure

__all__ = ["Report", "image_grid", "plot_front", "plot_history", "save_figure"]
