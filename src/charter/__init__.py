"""Charter: a model registry that gates every version on its safety profile."""

__version__ = "0.1.0"
