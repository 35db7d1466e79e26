"""Dispatch (DESIGN §4): each alert to the nearest eligible mobile post, with a deadline in the
database, the next post on a refusal, and the console's escalated queue when nobody takes it.

``geo`` holds the pure geometry, ``service`` the operations on one transaction, ``engine`` the
loop that runs them, ``notifier`` the device progress downlinks, ``stats`` the handling times.
"""

from alertnet.dispatch.engine import Dispatcher
from alertnet.dispatch.notifier import DeviceNotifier, RecordingNotifier, StateNotice
from alertnet.dispatch.service import DispatchPolicy

__all__ = ["DeviceNotifier", "DispatchPolicy", "Dispatcher", "RecordingNotifier", "StateNotice"]
