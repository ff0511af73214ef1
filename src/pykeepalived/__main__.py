"""``python -m pykeepalived`` runs the daemon command line."""

from pykeepalived.cli.daemon import main

raise SystemExit(main())
