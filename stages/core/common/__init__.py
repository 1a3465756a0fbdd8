"""Shared foundations: the classes, the typed params base, atomic I/O, staging, threads, splits and torch helpers."""
