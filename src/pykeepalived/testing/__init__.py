"""Public test helpers for pykeepalived and for projects that test their configurations."""
