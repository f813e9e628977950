"""The project's SQLite store, `.llmbench/store.sqlite3`.

Opening it from many threads and processes (`database.py`), the answer store that a later run
reuses (`answers.py`), the run record's writer and reader (`record_writer.py`,
`record_reader.py`) and what it keeps of each case (`transcript.py`).
"""
