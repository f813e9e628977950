"""The HTML report: what it shows, computed from the run record (`data.py`), the page
(`page.py`), its plots (`plots.py`, matplotlib) and the page's CSS and script (`assets/`).
"""
