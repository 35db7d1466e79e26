"""Runtime settings, read from ``ALERTNET_*`` environment variables (DESIGN §5)."""

from __future__ import annotations

from functools import cached_property
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, FilePath, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from alertnet.i18n import DEFAULT_LANGUAGE, DEFAULT_TIMEZONE, LANGUAGES, offered_language

EMBEDDED = "embedded"


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
    embedded_mqtt_port: int = 1883
    batch_max_messages: int = Field(default=200, ge=1)
    batch_max_wait_ms: float = Field(default=5.0, ge=0)
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

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """Accept the plain scheme names operators type and pick the async driver."""
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        if url.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
        return url

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
