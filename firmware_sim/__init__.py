"""A simulator of alertnet's field: devices with real firmware behaviour, LoRa gateways, tablets.

It speaks to alertnet only through its public interfaces (MQTT, HTTP, serial ptys, the
WebSocket stream) and imports nothing from alertnet but the pure ``alertnet.protocol``.
``python -m firmware_sim`` is the command; ``make bench`` drives it.
"""
