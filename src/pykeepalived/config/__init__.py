"""The keepalived.conf front end: lexer, parser, keyword tables, typed model, diagnostics."""

from pykeepalived.config.build import LoadOptions, LoadResult, load, load_text

__all__ = ["LoadOptions", "LoadResult", "load", "load_text"]
