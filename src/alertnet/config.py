"""Runtime settings, read from ``ALERTNET_*`` environment variables (DESIGN §5)."""

from __future__ import annotations

import socket
from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, FilePath, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from alertnet.i18n import DEFAULT_LANGUAGE, DEFAULT_TIMEZONE, LANGUAGES, offered_language

EMBEDDED = "embedded"


def default_cap_sender(hostname: str) -> str:
    """``alertnet@<hostname>``, any character CAP forbids in a sender replaced by ``-``."""
    host = "".join(
        "-" if char in " ,<&" or not char.isprintable() else char for char in hostname.strip()
    )
    return f"alertnet@{host or 'localhost'}"


def parse_listen(text: str) -> tuple[str, int]:
    """``ALERTNET_DC09_LISTEN``: ``host:port``, ``[v6]:port`` or ``:port`` (all interfaces)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"expected host:port, got {text!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)


class Settings(BaseSettings):
    """Everything an operator can set. Names and defaults are part of the contract."""

    model_config = SettingsConfigDict(env_prefix="ALERTNET_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./alertnet.db"
    mqtt_url: str = EMBEDDED
    serial: str = ""
    offer_timeout_s: float = Field(default=30.0, gt=0)
    log_level: str = "INFO"

    # Extensions beyond DESIGN §5 (new names only, defaults that work out of the box).
    mqtt_client_id: str = "alertnet-ingest"
    # Which of the N alertnet processes sharing one broker this is (1..N, N as given to
    # `alertnet broker config --processes N`): its MQTT logins end in "-<this number>".
    mqtt_process: int = Field(default=1, ge=1)
    mqtt_share_group: str = ""
    # With a share group: how long the broker keeps a member's MQTT 5 session after its
    # connection ends. 0 (the default) stops a dead member's share of the uplinks at once, so
    # a device's first retry reaches a survivor (alertnet.ingest.mqtt_client has the measurements).
    mqtt_session_expiry_s: int = Field(default=0, ge=0, le=0xFFFFFFFF)
    embedded_mqtt_port: int = 1883
    batch_max_messages: int = Field(default=200, ge=1)
    batch_max_wait_ms: float = Field(default=5.0, ge=0)
    # Devices each ingest process keeps in memory (alertnet.ingest.device_cache, DESIGN §13).
    device_cache_size: int = Field(default=200_000, ge=0)
    supervision_check_s: float = Field(default=30.0, gt=0)
    supervision_grace_s: float = Field(default=120.0, ge=0)
    dispatch_tick_s: float = Field(default=1.0, gt=0)
    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    # DESIGN §11: a raster MBTiles file served at /tiles/{z}/{x}/{y} (alertnet.web.tiles),
    # for a network without internet; the pages' maps then use it instead of tile_url.
    tiles_mbtiles: FilePath | None = None
    # Who may read /metrics besides an admin (alertnet.scrape): a scraper sending this bearer
    # token, or any client from these comma-separated addresses and CIDR networks.
    metrics_token: str = ""
    metrics_allow: str = ""
    # True while serving the demo: `alertnet serve` sets it from its --demo flag (alertnet.demo).
    demo: bool = False
    # DESIGN §11: the pages' language before login (one of alertnet.i18n.LANGUAGES) and the
    # time zone every page and report shows times in (an IANA name; the API stays in UTC).
    default_language: str = DEFAULT_LANGUAGE
    timezone: str = DEFAULT_TIMEZONE
    # DESIGN §9.2: the broker ChirpStack's MQTT integration publishes to (empty: no ChirpStack;
    # it may be the same broker as mqtt_url). alertnet.ingest.chirpstack.
    chirpstack_mqtt_url: str = ""
    # DESIGN §9.3: Frigate NVR. The broker Frigate publishes its events to (empty: no Frigate),
    # its topic prefix, its HTTP base (snapshot links and the catch-up after a reconnect;
    # empty: neither) and how long a camera alert waits in ``verify`` before it rings.
    # alertnet.ingest.frigate.
    frigate_mqtt_url: str = ""
    frigate_topic_prefix: str = "frigate"
    frigate_url: str = ""
    verify_timeout_s: float = Field(default=60.0, gt=0)
    # DESIGN §9.1: `host:port` (or `:port`, every interface) the SIA DC-09 receiver listens on,
    # TCP and UDP, for alarm panels (empty: off). alertnet.ingest.dc09.
    dc09_listen: str = ""
    # DESIGN §9.4: the <sender> of the CAP messages alertnet writes (alertnet.alerts.cap).
    cap_sender: str = Field(default_factory=lambda: default_cap_sender(socket.gethostname()))
    # DESIGN §12, the mahalla programme (alertnet.programme): the share of a mahalla's
    # households and businesses its alarms should protect, and what makes a street, a house
    # and a mahalla exemplary (online share of the period, response p80 to on scene).
    target_household_pct: float = Field(default=30.0, ge=0, le=100)
    target_business_pct: float = Field(default=60.0, ge=0, le=100)
    exemplary_online_pct: float = Field(default=99.0, ge=0, le=100)
    exemplary_on_scene_p80_s: float = Field(default=600.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """Accept the plain scheme names operators type and pick the async driver."""
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
        return url

    @field_validator("dc09_listen")
    @classmethod
    def _dc09_address(cls, text: str) -> str:
        text = text.strip()
        if text:
            parse_listen(text)  # a ValueError names what is wrong
        return text

    @field_validator("default_language")
    @classmethod
    def _offered_language(cls, code: str) -> str:
        language = offered_language(code)
        if language is None:
            raise ValueError(f"{code!r} is not an offered language (one of {', '.join(LANGUAGES)})")
        return language

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        name = name.strip()
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"{name!r} is not a time zone name such as Asia/Tashkent") from None
        return name

    @field_validator("cap_sender")
    @classmethod
    def _cap_sender(cls, sender: str) -> str:
        """CAP 1.2: a sender has no spaces, commas or restricted characters (< and &); an
        empty setting means the default."""
        sender = sender.strip()
        if not sender:
            return default_cap_sender(socket.gethostname())
        if not sender.isprintable() or any(char in sender for char in " ,<&"):
            raise ValueError(
                f"{sender!r} is not a CAP sender: no spaces, commas, '<' or '&' "
                "(e.g. alertnet@police.example.uz)"
            )
        return sender

    @property
    def mqtt_embedded(self) -> bool:
        return self.mqtt_url in ("", EMBEDDED)

    @cached_property
    def serial_ports(self) -> dict[str, str]:
        """``gw-1=/dev/ttyUSB0,gw-2=/dev/ttyUSB1`` → {gateway_id: path}; a bare path is an id."""
        ports: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in self.serial.split(","))):
            gateway_id, sep, path = item.partition("=")
            ports[gateway_id if sep else item] = path if sep else item
        return ports
