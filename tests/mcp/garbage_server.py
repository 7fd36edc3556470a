"""A stdio "MCP server" that handshakes properly, lists one tool, then answers its call with a
line that is not JSON-RPC at all."""

from __future__ import annotations

import json
import sys


def reply(request_id: object, result: dict[str, object]) -> None:
    print(json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}), flush=True)


for line in sys.stdin:
    message = json.loads(line)
    method = message.get("method")
    if method == "initialize":
        reply(message["id"], {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "garbage", "version": "1"},
        })  # fmt: skip
    elif method == "tools/list":
        tool = {"name": "mumble", "inputSchema": {"type": "object"},
                "annotations": {"readOnlyHint": True}}  # fmt: skip
        reply(message["id"], {"tools": [tool]})
    elif method == "tools/call":
        print("<html>this is not JSON-RPC</html>", flush=True)
