"""Collecting run directories into tables, plots and reports (``vssl table``, ``vssl report``)."""
