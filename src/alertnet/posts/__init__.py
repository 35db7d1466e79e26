"""Mobile police posts: the patrol crews alerts are dispatched to (DESIGN §3 Post, §4).

Registering and finding posts, and their resource shape. Their HTTP endpoints hand posts
alerts, so they are dispatch's (``dispatch.api``); registration over HTTP is the admin API's.
"""
