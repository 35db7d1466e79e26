"""The gateway registry: which LoRa gateways exist, when each was last heard, whether it is up.

``service`` holds the session-level operations, ``registry`` the batching writer the ingest
transports feed, ``api`` the console-facing read endpoint.
"""
