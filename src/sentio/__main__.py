"""``python -m sentio`` runs the ``sentio`` command."""

from sentio.cli.app import main

main()
