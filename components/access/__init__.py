"""An application's access to its database: its schema, its least-privilege role, the Kubernetes Secret
that carries the role's login and the Dapr state store that reads it (`Application` puts them together)."""
