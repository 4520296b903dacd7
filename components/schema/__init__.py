"""Old import path of `components.migrations`, kept only for what stacks' state refers to (see `provider`)."""
