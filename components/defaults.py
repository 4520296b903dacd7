"""Every default and limit of the stack, each stated once.

The settings reader, the dynamic providers, the migration engine and its command line import them
from here, so a stack setting, a provider's own default and what a provider's check refuses
cannot drift apart. Limits are those of the systems that would refuse a value later (Neon,
PostgreSQL, Kubernetes, Dapr): checking them early names the offending key before anything changes.
"""

from __future__ import annotations

import ipaddress

# Neon.
NEON_API_URL = "https://console.neon.tech/api/v2"
NEON_REGIONS = frozenset(
    {
        "aws-us-east-1",
        "aws-us-east-2",
        "aws-us-west-2",
        "aws-eu-central-1",
        "aws-eu-west-2",
        "aws-ap-southeast-1",
        "aws-ap-southeast-2",
        "aws-sa-east-1",
    }
)
REGION = "aws-us-east-2"
PG_VERSIONS = range(14, 19)
PG_VERSION = 17
HISTORY_RETENTION_SECONDS = 21600  # safe on the Free plan
HISTORY_RETENTION_MAX = 2592000  # 30 days
COMPUTE_UNIT_STEP = 0.25  # autoscaling limits are multiples of it, and at least one step
MAX_COMPUTE_UNITS = 56.0
MIN_CU = 0.25
MAX_CU = 1.0
SUSPEND_TIMEOUT_SECONDS = 300
SUSPEND_TIMEOUT_NEVER = -1
SUSPEND_TIMEOUT_MIN = 60  # Neon refuses 1 to 59 seconds; 0 is its default, -1 never suspends
SUSPEND_TIMEOUT_MAX = 604800
PRIMARY_BRANCH = "main"  # the default branch of a project the stack creates: no extra branch may take it
BRANCH_INIT_SOURCES = ("parent-data", "schema-only")
BRANCH_INIT_SOURCE = "parent-data"
MAX_NEON_NAME = 256  # names and ids in Neon's API, in characters
READ_REPLICAS = 0
READ_REPLICAS_MAX = 10  # read-only endpoints the stack makes on the primary branch, at most
PROTECT_PRIMARY_BRANCH = False
BRANCH_TTL_MIN_SECONDS = 3600  # the shortest expiry Neon's console offers; below it a preview could outlast it
BRANCH_TTL_MAX_SECONDS = 2592000  # Neon refuses an expires_at more than 30 days ahead
BRANCH_EXPIRY_PUSH_SECONDS = 3600  # an `up` pushes a branch's expiry forward once this much of it has passed

# PostgreSQL.
PG_MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL cuts longer names short, Neon refuses them
PG_RESERVED_ROLE_PREFIX = "pg_"
PG_RESERVED_DATABASES = frozenset({"postgres", "template0", "template1"})  # every Neon branch has them
PG_MAX_TIMEOUT_MS = 2**31 - 1  # lock_timeout, statement_timeout: int milliseconds
PG_CONNECT_TIMEOUT_SECONDS = 15  # the stack's own connections, and `connect_timeout` of applications' URLs
PG_CONNECT_TIMEOUT_MIN = 2  # libpq waits at least 2 s whatever the value (1 counts as 2)
PG_CONNECT_TIMEOUT_MAX = 600
APP_SCHEMA = "public"  # where the migrations put the application's tables

# Migrations.
ALLOW_DESTRUCTIVE = True
ALLOW_OUT_OF_ORDER = False
LOCK_TIMEOUT = "10s"
STATEMENT_TIMEOUT = "15min"

# The application role.
PASSWORD_VERSION = 1
PASSWORD_VERSION_MAX = 2**31 - 1

# Kubernetes, Dapr, Go.
KUBERNETES_MAX_LABEL = 63
KUBERNETES_MAX_SUBDOMAIN = 253
KUBERNETES_BUILT_IN_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
DAPR_SERVICE_SUFFIX = "-dapr"  # Dapr makes a Service `<app id>-dapr`, so that must be a DNS-1123 label
GO_MAX_DURATION_NS = 2**63 - 1  # time.Duration (int64 nanoseconds)


def compute_units_problem(units: float) -> str | None:
    """Why Neon would refuse `units` as an autoscaling limit, or None."""
    if not COMPUTE_UNIT_STEP <= units <= MAX_COMPUTE_UNITS or (units / COMPUTE_UNIT_STEP) % 1:
        return (
            f"{units} CU is not a multiple of {COMPUTE_UNIT_STEP} between {COMPUTE_UNIT_STEP} "
            f"and {MAX_COMPUTE_UNITS:g}"
        )
    return None


def suspend_timeout_problem(seconds: int) -> str | None:
    """Why Neon would refuse an auto-suspend of `seconds`, already read as an integer from
    SUSPEND_TIMEOUT_NEVER to SUSPEND_TIMEOUT_MAX, or None."""
    if 0 < seconds < SUSPEND_TIMEOUT_MIN:
        return (
            f"{seconds} is below Neon's minimum of {SUSPEND_TIMEOUT_MIN} seconds "
            f"(0 is Neon's default, {SUSPEND_TIMEOUT_NEVER} is never)"
        )
    return None


def ip_range(entry: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
    """(first, last) address of an IP Allow entry in one of Neon's forms: an address, a CIDR range or
    a range `first-last`; ValueError saying why it is none of them."""
    first, dash, last = entry.partition("-")
    if dash:
        low, high = ipaddress.ip_address(first.strip()), ipaddress.ip_address(last.strip())
        if low.version != high.version:
            raise ValueError("a range joins an IPv4 and an IPv6 address")
        if low > high:
            raise ValueError(f"the range starts above its end ({low} > {high})")
        return low, high
    if "/" in entry:
        network = ipaddress.ip_network(entry)  # strict: host bits set are a typo (10.0.0.1/8)
        return network[0], network[-1]
    address = ipaddress.ip_address(entry)
    return address, address


def ip_allow_entry_problem(entry: str) -> str | None:
    """Why Neon would refuse `entry` in an IP Allow list, or None."""
    try:
        ip_range(entry)
    except ValueError as error:
        return f"{entry!r} is not an IP address, a CIDR range or a range first-last ({error})"
    return None
