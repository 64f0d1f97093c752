"""Reports: plots, image grids and static HTML pages."""

from flowevo.report.grids import image_grid
from flowevo.report.html import Report
from flowevo.report.plots import plot_front, plot_history, save_figure
from flowevo.report.run_report import write_run_report

__all__ = ["Report", "image_grid", "plot_front", "plot_history", "save_figure", "write_run_report"]
