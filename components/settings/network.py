"""The lockout guard: the machines that run the stack must be let in by the allow list they set.

The stack's migrations and app-role SQL connect to the primary branch's DIRECT endpoint from the
machine running `pulumi up`; a list that leaves that machine out would make `up` time out after
the project settings changed. Nothing can see that machine's public address from the inside (NAT,
CI runners), so the user names it in `deployerIps`, and every deployer address must lie inside the
allow list.
"""

from __future__ import annotations

from components.defaults import ip_range


def uncovered(deployers: list[str], allowed: list[str]) -> list[str]:
    """The deployer entries not wholly inside the union of the allowed entries (all well formed)."""
    spans: list[list[int]] = []  # [version, first, last], adjacent or overlapping entries merged
    for version, low, high in sorted((a.version, int(a), int(b)) for a, b in map(ip_range, allowed)):
        if spans and spans[-1][0] == version and low <= spans[-1][2] + 1:
            spans[-1][2] = max(spans[-1][2], high)
        else:
            spans.append([version, low, high])

    def covered(entry: str) -> bool:
        first, last = ip_range(entry)
        return any(v == first.version and lo <= int(first) and int(last) <= hi for v, lo, hi in spans)

    return [entry for entry in deployers if not covered(entry)]
