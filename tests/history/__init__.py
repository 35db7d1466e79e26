"""History, CSV export and shift report tests (DESIGN §10): API, paging property, browser."""
