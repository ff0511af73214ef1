"""``python -m pykeepalived`` runs the daemon command line."""

from pykeepalived.cli.daemon import run

run()
