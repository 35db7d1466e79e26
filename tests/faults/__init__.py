"""The fault suite (issue 12): real services fail while devices press, and nothing is lost.

Each scenario runs ``alertnet serve`` as a subprocess against a real Mosquitto and a real
PostgreSQL, lets simulated devices press and retry over MQTT, takes one part away (the broker,
PostgreSQL, the whole process, one runtime task), brings it back, and then checks that every
press became exactly one event and one alert or merge, that ``/readyz`` told the truth all
along, and prints how long recovery took.
"""
