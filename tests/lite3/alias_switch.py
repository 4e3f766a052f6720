"""Run by tests/test_engine_alias.py with .venv-lite3's Python: kb's alias switch against Milvus Lite 3.x, the
local target that has aliases. Prints one JSON line of what it saw."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pymilvus import MilvusClient  # noqa: E402

from kb.engine.alias import ALIAS, switch_alias  # noqa: E402


def main(db: str) -> None:
    client = MilvusClient(db)
    seen: dict[str, object] = {}
    for n, name in enumerate(("kb_v_first", "kb_v_second")):
        client.create_collection(name, dimension=4)
        client.insert(name, [{"id": n, "vector": [0.5, 0.5, 0.5, 0.5]}])
        seen[name] = switch_alias(client, name)
        seen[f"{name}_again"] = switch_alias(client, name)  # a rerun of the switch changes nothing
        seen[f"{name}_target"] = client.describe_alias(ALIAS)["collection_name"]
        seen[f"{name}_rows"] = [r["id"] for r in client.query(ALIAS, filter="id >= 0", output_fields=["id"])]
    client.drop_collection("kb_v_first")  # the replaced collection goes only after the switch
    seen["after_drop_rows"] = [r["id"] for r in client.query(ALIAS, filter="id >= 0", output_fields=["id"])]
    client.close()
    print(json.dumps(seen))


if __name__ == "__main__":
    main(sys.argv[1])
