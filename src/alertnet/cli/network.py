"""The city's network from a shell: ``device``, ``mahalla`` and ``post`` register what the
registry holds; ``gateway`` runs a serial LoRa bridge; ``broker config`` writes Mosquitto's
files from the registry."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.broker import options as broker_options
from alertnet.cli.common import EXIT_OK, in_transaction
from alertnet.config import Settings

if TYPE_CHECKING:
    from alertnet.cli.common import Commands


def add_registry_commands(commands: Commands) -> None:
    """``device add|import``, ``mahalla add|import`` and ``post add``."""
    device = commands.add_parser("device", help="register devices").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    command = device.add_parser("add", help="register one device")
    command.add_argument("eui", metavar="EUI", help="16 hex characters")
    command.add_argument("--kind", required=True, help="panic_button, intrusion_alarm, …")
    command.add_argument("--lat", type=float, required=True)
    command.add_argument("--lon", type=float, required=True)
    command.add_argument("--key", metavar="HEX", help="32 hex characters; generated if omitted")
    command.add_argument("--mahalla", metavar="NAME")
    command.add_argument("--site", help="public, household or business (default by kind)")
    command.add_argument("--name", default="")
    command.add_argument("--address", default="")
    command.add_argument(
        "--supervision-s",
        type=int,
        metavar="SECONDS",
        help="heartbeat supervision interval (default 900 public panic buttons, else 3600)",
    )
    command.add_argument(
        "--silent",
        action="store_true",
        help="a hold-up device: its alerts are silent, it is told 'received' and no more",
    )
    panel = command.add_argument_group("alarm panel over SIA DC-09 (DESIGN §9.1)")
    panel.add_argument(
        "--dc09-account",
        metavar="ACCT",
        help="the account (3-16 hex digits) the panel reports as; supervision default 90000 s",
    )
    panel.add_argument(
        "--dc09-key",
        metavar="HEX",
        help="the panel's AES key, 32/48/64 hex digits; without it the panel sends in the clear",
    )
    camera = command.add_argument_group("camera seen through Frigate NVR (DESIGN §9.3)")
    camera.add_argument("--camera", metavar="NAME", help="its camera name in Frigate")
    camera.add_argument("--labels", metavar="L1,L2", help="labels that alert (default person)")
    camera.add_argument("--zones", metavar="Z1,Z2", help="zones to watch (default: everywhere)")
    camera.add_argument(
        "--hours",
        metavar="HH-HH",
        help="hours to watch in ALERTNET_TIMEZONE, e.g. 22-06 (wraps midnight; default always)",
    )
    premises = command.add_argument_group("premises and call list (DESIGN §10)")
    premises.add_argument("--premises-ref", metavar="REF", help="devices sharing it are one site")
    premises.add_argument("--owner", default="")
    premises.add_argument("--street", default="")
    premises.add_argument("--notes", default="", help="entrance, floor, key-holder instructions")
    premises.add_argument(
        "--contact",
        action="append",
        default=[],
        metavar="NAME;PHONE[;RELATION]",
        help="one person to call; repeat it, in calling order",
    )
    command.set_defaults(handler=_device_add)
    command = device.add_parser("import", help="register the devices of a CSV file")
    command.add_argument("file", metavar="FILE.csv")
    command.set_defaults(handler=_device_import)

    mahalla = commands.add_parser("mahalla", help="register mahallas").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    command = mahalla.add_parser("add", help="register one mahalla")
    command.add_argument("name", metavar="NAME")
    command.add_argument("--risk", required=True, help="red, yellow or green")
    command.add_argument("--district", default="")
    command.add_argument("--region", default="")
    command.add_argument("--lat", type=float, help="centroid latitude")
    command.add_argument("--lon", type=float, help="centroid longitude")
    command.add_argument("--households", type=int, default=0)
    command.add_argument("--businesses", type=int, default=0)
    command.set_defaults(handler=_mahalla_add)
    command = mahalla.add_parser(
        "import", help="add or update mahallas (households, businesses, …) from a CSV file"
    )
    command.add_argument("file", metavar="FILE.csv")
    command.set_defaults(handler=_mahalla_import)

    post = commands.add_parser("post", help="register mobile police posts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    command = post.add_parser("add", help="register one post (it starts off duty)")
    command.add_argument("callsign", metavar="CALLSIGN")
    command.add_argument("--lat", type=float)
    command.add_argument("--lon", type=float)
    command.add_argument("--mahalla", metavar="NAME", help="home mahalla")
    command.set_defaults(handler=_post_add)


def add_transport_commands(commands: Commands) -> None:
    """``gateway`` and ``broker config``."""
    command = commands.add_parser("gateway", help="run a serial LoRa gateway bridge")
    command.add_argument("--serial", required=True, metavar="PORT", help="e.g. /dev/ttyUSB0")
    command.add_argument("--id", metavar="ID", help="gateway id (default: the port path)")
    command.set_defaults(handler=_gateway)

    broker = commands.add_parser("broker", help="the production MQTT broker").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    command = broker.add_parser(
        "config",
        help="write Mosquitto's config, passwd and acl from the registry",
        description=broker_options.DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    broker_options.add_config_arguments(command)
    command.set_defaults(handler=_broker_config)


def _device_add(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.devices.service import add_device, camera_setup, parse_dc09_key, parse_key_hex
    from alertnet.premises import parse_cli_premises

    key = parse_key_hex(args.key) if args.key is not None else None
    dc09_key = parse_dc09_key(args.dc09_key) if args.dc09_key is not None else None
    camera = camera_setup(args.camera, args.labels, args.zones, args.hours)
    premises = parse_cli_premises(
        ref=args.premises_ref,
        owner=args.owner,
        address=args.address,
        street=args.street,
        notes=args.notes,
        contacts=args.contact,
    )

    async def work(session: AsyncSession) -> tuple[str, str, str, int, bytes]:
        device, device_key = await add_device(
            session,
            args.eui,
            kind=args.kind,
            lat=args.lat,
            lon=args.lon,
            key=key,
            mahalla_name=args.mahalla,
            site=args.site,
            name=args.name,
            address=args.address,
            supervision_interval_s=args.supervision_s,
            silent=args.silent,
            premises=premises,
            dc09_account=args.dc09_account,
            dc09_key=dc09_key,
            camera=camera,
        )
        return device.eui, device.kind, device.site, device.supervision_interval_s, device_key

    eui, kind, site, supervision_s, device_key = in_transaction(settings, work)
    silent = ", SILENT" if args.silent else ""
    print(f"added device {eui}: {kind}, {site} site{silent}, supervision every {supervision_s} s")
    if args.dc09_account:
        cipher = f"AES-{len(dc09_key) * 8}" if dc09_key else "unencrypted"
        print(f"DC-09 account {args.dc09_account.strip().upper()} ({cipher})")
        return EXIT_OK  # a panel has no use for a v1 frame key
    if camera is not None:
        zones = camera.zones or "everywhere"
        print(
            f"Frigate camera {camera.name}: labels {camera.labels}, zones {zones}, "
            f"hours {camera.hours or 'always'}"
        )
        return EXIT_OK  # Frigate signs nothing with a v1 frame key
    if key is None:
        print(f"generated key: {device_key.hex()}")
        print("flash this key into the device; anyone holding it can send alarms as the device")
    return EXIT_OK


def _device_import(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.devices.importer import ImportResult, import_devices

    path = Path(args.file)

    async def work(session: AsyncSession) -> ImportResult:
        return await import_devices(session, path)

    result = in_transaction(settings, work)
    noun = "device" if result.count == 1 else "devices"
    print(f"imported {result.count} {noun} from {path}")
    if result.generated_keys:
        print("generated keys (flash each into its device):")
        print("eui,key")
        for eui, key in result.generated_keys:
            print(f"{eui},{key.hex()}")
    return EXIT_OK


def _mahalla_add(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.mahallas import add_mahalla

    async def work(session: AsyncSession) -> tuple[str, str]:
        mahalla = await add_mahalla(
            session,
            args.name,
            risk=args.risk,
            district=args.district,
            region=args.region,
            lat=args.lat,
            lon=args.lon,
            households=args.households,
            businesses=args.businesses,
        )
        return mahalla.name, mahalla.risk

    name, risk = in_transaction(settings, work)
    print(f"added mahalla {name!r} ({risk})")
    return EXIT_OK


def _mahalla_import(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.programme.registry import MahallaImport, import_mahallas

    path = Path(args.file)

    async def work(session: AsyncSession) -> MahallaImport:
        return await import_mahallas(session, path)

    result = in_transaction(settings, work)
    print(f"mahallas from {path}: {result.added} added, {result.updated} updated")
    return EXIT_OK


def _post_add(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.posts.service import add_post

    async def work(session: AsyncSession) -> tuple[str, str]:
        post = await add_post(
            session, args.callsign, lat=args.lat, lon=args.lon, home_mahalla_name=args.mahalla
        )
        return post.callsign, post.status

    callsign, status = in_transaction(settings, work)
    print(f"added post {callsign} ({status}; the crew goes on duty from its tablet)")
    return EXIT_OK


def _gateway(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.ingest.gateway_bridge import main as run_gateway

    return run_gateway(args.serial, args.id or args.serial, settings)


def _broker_config(args: argparse.Namespace, settings: Settings) -> int:
    from alertnet.broker.accounts import load_registry
    from alertnet.broker.command import write_broker_config

    print(write_broker_config(args, settings, in_transaction(settings, load_registry)))
    return EXIT_OK
