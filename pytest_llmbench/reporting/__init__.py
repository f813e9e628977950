"""What people read: the comparison table (`table.py`), the markdown file (`markdown.py`), a
model's JSONL line and writing it (`jsonl.py`), the one-line-per-model summary script
(`summary.py`) and the HTML report (`html/`). Each renders what `results` computed.
"""
