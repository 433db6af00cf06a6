"""docagent: PDFs dropped in a folder, read, matched to one patient, filed — or asked about."""

__version__ = "0.1.0"
