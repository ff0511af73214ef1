"""Configuration corpora for tests: the seed configurations and Debian's keepalived samples."""

from __future__ import annotations

from pathlib import Path

SEEDS = Path(__file__).parent / "data" / "seeds"
DEBIAN_SAMPLES = [Path("/usr/share/doc/keepalived/samples"), Path("/etc/keepalived")]


def seed_configs() -> list[Path]:
    """The configurations cut out of the seed documents (kept in the repository)."""
    return sorted(SEEDS.glob("*.conf"))


def debian_samples() -> list[Path]:
    """keepalived.conf samples shipped by Debian's keepalived package (empty if not installed)."""
    found: list[Path] = []
    for folder in DEBIAN_SAMPLES:
        if folder.is_dir():
            found.extend(
                p
                for p in sorted(folder.iterdir())
                if p.name.startswith("keepalived.conf") and p.is_file()
            )
    return found


def corpus() -> list[Path]:
    """Every configuration we have."""
    return seed_configs() + debian_samples()
