"""Knockout's benchmark: `make bench` (or `python -m bench`) prints a table, goal beside each
figure."""
