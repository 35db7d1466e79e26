"""Fuzzing the HTTP edge (issue 12, DESIGN §14): no input may get a 5xx or stop ingest."""
