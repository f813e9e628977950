"""One benchmark run inside pytest.

Its hooks as the methods of one object (`bench.py`), the run state and the model manager, the
only code that loads and unloads (`session.py`), generation in flight with scoring beside it
(`scheduler.py`, `sampling.py`), the items (`items.py`), the start-up check of the models
(`preflight.py`), progress lines (`progress.py`), signals and exit statuses (`stopping.py`),
pytest-xdist (`xdist.py`), `--llmbench-list` (`listing.py`), and the end of a run in one place
(`ending.py`, with the terminal's summary lines in `summary.py`).
"""
