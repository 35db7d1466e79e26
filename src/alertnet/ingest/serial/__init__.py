"""Serial LoRa gateways: REYAX-style UART modules on local ports (DESIGN §2.5).

Three layers, so that alertnet's in-process bridge and the standalone ``alertnet gateway``
process share one implementation of the port and the module:

- ``port``: ``SerialPort`` reads and writes a serial device without blocking the loop and
  re-opens it with backoff when it vanishes (a USB unplug).
- ``module``: ``ReyaxModule`` speaks the module's AT protocol on the port: ``+RCV`` lines
  become packets, bad lines ``DecodeError`` values, ``send()`` writes ``AT+SEND``.
- ``bridge``: ``SerialBridge`` turns the packets into pipeline submissions (receptions with
  the gateway id, RSSI and SNR), bad lines into quarantine, and sends the downlinks.
"""

from alertnet.ingest.serial.bridge import SerialBridge
from alertnet.ingest.serial.module import ModuleListener, ReyaxModule, SendResult
from alertnet.ingest.serial.port import BAUDRATE, PortClosedError, SerialPort

__all__ = [
    "BAUDRATE",
    "ModuleListener",
    "PortClosedError",
    "ReyaxModule",
    "SendResult",
    "SerialBridge",
    "SerialPort",
]
