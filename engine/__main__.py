"""`python -m engine` runs the command-line interface."""

from engine.cli.main import main

main()
