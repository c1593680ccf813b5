"""Command-line tools around the archive (demo data, ...), importable and testable without it."""
