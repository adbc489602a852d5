"""``supervisor scale NAME N``: run N instances of a program. Standard library only."""

from __future__ import annotations

import sys
from typing import Any

from supervisor.machine.errors import EXIT_GAVE_UP, EXIT_OK


def scale(client: Any, name: str, count: int) -> int:
    """Ask the daemon for ``count`` instances of ``name``; print what started and stopped; 1 when refused."""
    code, doc = client.request("POST", f"/v1/programs/{name}/scale", {"instances": count})
    if code != 200:
        error = doc.get("error") if isinstance(doc, dict) else None
        # The daemon's reasons name the program already ("web has no instances: ...").
        print(f"supervisor: {error}" if error else f"supervisor: {name}: HTTP {code}", file=sys.stderr)
        return EXIT_GAVE_UP
    what = [f"started {', '.join(doc['added'])}"] if doc["added"] else []
    what += [f"stopped {', '.join(doc['removed'])}"] if doc["removed"] else []
    print(f"{name}: {doc['was']} -> {doc['instances']} instances" + (f" ({'; '.join(what)})" if what else ""))
    for prog in doc["programs"]:
        pid = f" pid {prog['pid']}" if prog.get("pid") else ""
        print(f"  {prog['name']}: {prog['state']}{pid}")
    return EXIT_OK
