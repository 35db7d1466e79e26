"""Browser tests of the web pages (real Chromium, live alertnet)."""
