"""Where stacks deployed before the rename to `components.migrations` find their migrations provider.

Pulumi stores each dynamic resource's provider in the stack's state as a pickle that refers to the
provider's class by module and name: `components.schema.provider.MigrationsProvider` in every stack
last updated before the rename (the class holds no attributes, so nothing else is referred to).
`pulumi refresh` and `pulumi destroy` load that pickle; only `pulumi up` stores the new path. This
module keeps those stacks working until each has had an `up` (tests/engine/test_old_stacks.py).
"""

from components.migrations.provider import MigrationsProvider

__all__ = ["MigrationsProvider"]
