"""The realtime side: the feed outbox and (later) the WebSocket hub that streams it."""
