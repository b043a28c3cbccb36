"""``python -m ecomsend_cli`` runs the CLI."""

from .cli import main

main()
