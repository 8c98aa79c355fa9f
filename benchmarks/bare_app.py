"""The yardstick for webhook ingest: a bare Starlette endpoint under the same uvicorn set-up that only
parses the JSON body. `python -m benchmarks.bare_app --port N`."""

from __future__ import annotations

import argparse
import asyncio
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from watchdog.serving import serve


async def webhook(request: Request) -> JSONResponse:
    json.loads(await request.body())
    return JSONResponse({"status": "accepted"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = Starlette(routes=[Route("/webhook/evolution", webhook, methods=["POST"])])
    asyncio.run(serve(app, "127.0.0.1", args.port))


if __name__ == "__main__":
    main()
