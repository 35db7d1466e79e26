"""Dispatch (DESIGN §4): each alert to the nearest eligible mobile post, with a deadline in the
database, the next post on a refusal, and the console's escalated queue when nobody takes it.

The rooms: ``policy`` (the numbers, state groups and outcomes), ``geo`` (pure geometry),
``locks`` (row locks), ``eligibility`` (who may be offered an alert and why: the one rule),
``matching`` (claiming posts and the offer moves), ``queue`` (the engine's
passes), ``actions`` (what posts and dispatchers do), ``duty`` (a post's own reports),
``views`` (offers, feed messages, console and tablet reads), ``engine`` (the loop and the one
transaction per action), ``notifier`` (device progress downlinks), ``stats`` (handling
times), ``api`` (the HTTP endpoints), ``verify`` (a camera alert's confirm and dismiss),
``realpress`` (a real alarm cancelling the device's drills, run inside the ingest batch).

Concurrency — several processes may run dispatch against one PostgreSQL:

* every change to an alert, or to one of its offers, happens while holding the alert's row lock
  (``FOR UPDATE``); queue scans claim alerts with ``FOR UPDATE SKIP LOCKED`` so two engines
  split the work instead of doing it twice;
* a post is offered an alert only while its row is locked, and whether it is free is read in a
  fresh statement *after* taking the lock (READ COMMITTED gives each statement a new snapshot),
  so two transactions never both see the post free;
* lock order is alert → offer → post; code that already holds a post (a post coming free)
  claims alerts with ``SKIP LOCKED`` and therefore never waits in the opposite order;
* every wait for a row lock comes before the transaction's first feed row: feed writers share
  one advisory lock until commit (``realtime.feed``), so waiting for a row after taking it
  could deadlock. After the first feed row only ``SKIP LOCKED`` claims are made;
* the partial unique indexes (one pending offer per alert and per post, one active alert per
  post) stay the last word: a lost race surfaces as ``IntegrityError``, which the caller rolls
  back and retries.

SQLite has no row locks; there a dispatch transaction takes the database write lock before its
authoritative reads, so dispatch transactions of one process are serialized.
"""

from alertnet.dispatch.engine import Dispatcher
from alertnet.dispatch.notifier import DeviceNotifier, RecordingNotifier, StateNotice
from alertnet.dispatch.policy import DispatchPolicy

__all__ = ["DeviceNotifier", "DispatchPolicy", "Dispatcher", "RecordingNotifier", "StateNotice"]
