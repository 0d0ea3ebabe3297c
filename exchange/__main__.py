"""``python -m exchange`` runs the command line."""

from exchange.cli import main

main()
