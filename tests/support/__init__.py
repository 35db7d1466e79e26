"""Helpers shared by alertnet's tests: real services, fresh databases and data builders.

Import them as ``tests.support.<module>`` (``from tests.support.factories import
create_device``); ``tests/conftest.py`` puts the project root on ``sys.path`` for that.
``polling.eventually`` is the one way to wait for something; ``asgi`` calls the app in process.
"""
