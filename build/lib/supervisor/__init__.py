"""A process supervisor for Python web stacks."""

__version__ = "0.1.0"
