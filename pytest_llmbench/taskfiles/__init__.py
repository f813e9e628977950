"""What a task file is and where task files come from.

The format (pydantic models, `format.py`) and its loading with errors that name file, line,
task and field (`loading.py`), the YAML read within a budget (`bounded_yaml.py`), the grammar of
tooling cases' argument matchers (`matchers.py`), the parsed-file cache (`cache.py`), the task
roots and the bundled tasks' node ids (`roots.py`), and which declared cases a run selected
(`selection.py`). Nothing here imports the suites that score the cases.
"""
