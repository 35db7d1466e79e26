"""A test alertnet server process: ``python -m tests.realtime.serve DATABASE_URL PORT``.

It serves ``tests.auth.helpers.build_app`` (the real app, plus issue 6's wiring while
``create_app`` lacks it) with uvicorn, so that tests can run several alertnet processes on one
database. ``--safety-poll-s`` stretches the hub's safety poll, so that only LISTEN/NOTIFY can
explain a prompt delivery.
"""

from __future__ import annotations

import argparse

import uvicorn

from tests.auth.helpers import build_app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("port", type=int)
    parser.add_argument("--safety-poll-s", type=float, default=1.0)
    args = parser.parse_args()
    app = build_app(args.database_url, hub_tuning={"safety_poll_s": args.safety_poll_s})
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
