"""pytest-llmbench: benchmark local language models by executing what they write."""

__version__ = "0.1.0"
