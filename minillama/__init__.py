"""minillama: Code Llama rebuilt at a scale that trains on a laptop CPU."""

__version__ = "0.1.0"
