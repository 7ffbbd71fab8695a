"""reprobook: kernels, data, results store and claims ledger of the reproduction book."""
__version__ = "0.1.0"
