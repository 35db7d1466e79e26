"""Who may use alertnet: password hashing, API tokens and user accounts (DESIGN §3 User)."""
