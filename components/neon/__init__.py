"""Neon control plane: API client, dynamic providers (Project, Branch, Role, Database), NeonEnvironment."""
