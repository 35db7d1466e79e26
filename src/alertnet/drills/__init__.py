"""Training drills (DESIGN §12): a dispatcher starts one for a mahalla, alertnet creates its
events inside the ingest pipeline, posts handle them as usual, and the report says how they did.

``service`` starts and stops drills (choosing the devices), ``runner`` creates their events when
due, ``report`` measures them and ``api`` serves them over HTTP; ``dispatch.realpress`` cancels
a device's drill alerts when a real alarm comes from it.
"""
