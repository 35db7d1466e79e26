"""The realtime side: the feed outbox, the hub that follows it, and the WebSocket stream."""
