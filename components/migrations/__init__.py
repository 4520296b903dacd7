"""Versioned SQL migrations of the apps' databases (the SQL files themselves live in the top-level `schema/`).

`files` names, reads, checksums and parses the files; `statement_rules` says what each statement
may do; `planning` decides what to run from the files and a database's history; `engine` applies
them over psycopg; `provider` is the Pulumi dynamic resource; `python -m components.migrations` is
the command line.
"""
