"""The `engine` command-line interface."""
