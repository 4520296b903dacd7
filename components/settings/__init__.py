"""Stack settings: read once from the stack's config, validated, returned as typed objects.

Every problem is collected (not only the first) and reported with the config key that holds it,
before the program declares any resource. The names below are the package's interface:
`keys` says which settings exist and their defaults, `objects` holds the typed settings,
`reader` reads and checks single values, `parse` puts a whole stack's settings together.
"""

from components.settings.keys import (
    DEFAULTS,
    NEON_API_KEY_ENV,
    NEON_API_KEY_KEY,
    NEON_API_URL_KEY,
    PROJECT,
    PROJECT_ROOT,
    SCHEMA_ROOT,
)
from components.settings.objects import (
    AppSettings,
    BranchModeSettings,
    ComputeSettings,
    KubernetesSettings,
    MigrationSettings,
    NeonSettings,
    SettingsError,
    StackSettings,
)
from components.settings.parse import load_settings, parse_settings, stack_config
from components.settings.reader import DNS_LABEL, DNS_SUBDOMAIN, GO_DURATION

__all__ = [
    "DEFAULTS",
    "DNS_LABEL",
    "DNS_SUBDOMAIN",
    "GO_DURATION",
    "NEON_API_KEY_ENV",
    "NEON_API_KEY_KEY",
    "NEON_API_URL_KEY",
    "PROJECT",
    "PROJECT_ROOT",
    "SCHEMA_ROOT",
    "AppSettings",
    "BranchModeSettings",
    "ComputeSettings",
    "KubernetesSettings",
    "MigrationSettings",
    "NeonSettings",
    "SettingsError",
    "StackSettings",
    "load_settings",
    "parse_settings",
    "stack_config",
]
