"""Command-line interface: each command parses arguments and calls the Python API, nothing more."""
