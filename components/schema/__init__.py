"""Versioned SQL migrations for the apps' databases: files, engine, Pulumi dynamic provider and CLI."""
