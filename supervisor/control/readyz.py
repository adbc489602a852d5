"""``GET /readyz``: whether this replica should take traffic, for the units that serve it.

``[supervisor] traffic`` names those units (the document carries the list); ``?unit=NAME``
asks for one unit. The answer is read from the status document only.
"""

from __future__ import annotations

from typing import Any

from supervisor.machine.status import StatusDocument, traffic_reasons


def readyz(doc: StatusDocument, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
    """Return the status code and body of ``/readyz``: 200 ready, 503 with the reasons, 404 for an unknown unit."""
    sup = doc["supervisor"]
    units = doc.get("units", [])
    asked = query.get("unit")
    if not asked:
        reasons = traffic_reasons(sup["state"], units, sup.get("traffic"))
        return (503, {"ready": False, "reasons": reasons}) if reasons else (200, {"ready": True})
    name = asked[0]
    known = [u["name"] for u in units]
    if not any(n == name or n.startswith(f"{name}:") for n in known):  # web: all of its instances
        return 404, {"error": f"no unit named {name!r} (units: {', '.join(known)})"}
    reasons = traffic_reasons(sup["state"], units, [name])
    if reasons:
        return 503, {"unit": name, "ready": False, "reasons": reasons}
    return 200, {"unit": name, "ready": True}
