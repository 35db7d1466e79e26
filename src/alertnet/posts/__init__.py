"""Mobile police posts: the patrol crews alerts are dispatched to (DESIGN §3 Post, §4)."""
