"""The web pages alertnet serves: the dispatch console, the mobile post's tablet app, login.

Plain HTML, CSS and JavaScript from ``static/``, no build step; ``pages.router`` serves them.
"""

from alertnet.web.pages import router

__all__ = ["router"]
