"""Project-local test configuration. The plugin itself is registered by its entry point
(`pip install -e .`), so it is not listed in `pytest_plugins` here."""
