"""SIA DC-09 alarm panels (DESIGN §9.1): the wire format, its AES layer, the code table and the
network receiver that sit in front of the one pipeline.

``frame``, ``crypto`` and ``codes`` are pure (no I/O, no asyncio) so the firmware simulator and
the tests use them as they are; ``receiver`` is the TCP/UDP transport; ``intake`` turns one
received frame into a pipeline event and an answer. Nothing is imported here, so importing the
pure modules never pulls in the database or the network code.
"""
