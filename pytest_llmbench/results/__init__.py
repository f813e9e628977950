"""Pure numbers over CaseResults.

Aggregation into per-task and per-model reports (`aggregate.py`), stability labels
(`stability.py`), intervals, pass@k and paired tests (`stats.py`), earlier runs read back from
the JSONL (`history.py`), what changed between two runs (`comparison.py`) and the regression
gate (`gate.py`). Nothing here prints or writes a file.
"""
