"""A charger driven by the Python `ocpp` library (PyPI), for the engine's interop tests.

    python charger.py --url ws://127.0.0.1:PORT/ocpp --id CHARGER --protocol ocpp1.6 \
        --password P --id-tag TAG [--transaction-id ID] [--connector 1]

Connects to URL/ID over `websockets` with HTTP Basic auth (user = charger id), offers exactly
the one subprotocol given, and runs one full session through the library's ChargePoint and
call classes (ocpp.v16, or ocpp.v201 for ocpp2.0.1):

  1.6    BootNotification, Heartbeat, StatusNotification, Authorize, StartTransaction
         (meterStart 1000 Wh), MeterValues × 3 (1500, 2000, 2500 Wh), StopTransaction
         (meterStop 3000 Wh)
  2.0.1  BootNotification, Heartbeat, StatusNotification, Authorize, TransactionEvent
         Started (1000 Wh), Updated × 3 (1500, 2000, 2500 Wh), Ended (3000 Wh), seqNo 0…4

so the session's energy is 2000 Wh. Timestamps are fixed in the past, 5 minutes apart from
2026-11-20T08:00:00Z: 500 Wh in 5 minutes is 6 kW, well within a 22 kW connector (500 Wh in
60 s would be 30 kW, which the engine rightly rejects as exceeding the power).

The library validates every request before sending it and every CALLRESULT the engine
returns against its own copy of the OCPP JSON schemas; a CALLERROR, a schema violation, a
timeout or an unexpected status makes the script fail. On success it prints one JSON line
on stdout (protocol, chargerId, transactionId, statuses) and exits 0; on failure it prints
the reason (and the library's frame log) on stderr and exits 1. Exit 2: bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import datatypes as dt16
from ocpp.v16 import enums as enums16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import datatypes as dt201
from ocpp.v201 import enums as enums201

T0 = datetime(2026, 11, 20, 8, 0, 0, tzinfo=timezone.utc)
STEP = timedelta(minutes=5)
METER_START_WH = 1000
METER_VALUES_WH = (1500, 2000, 2500)
METER_STOP_WH = 3000
RESPONSE_TIMEOUT_S = 30
OVERALL_TIMEOUT_S = 120


def at(step: int) -> str:
    """T0 + step × 5 minutes, as an OCPP timestamp (UTC, Z)."""
    return (T0 + step * STEP).strftime("%Y-%m-%dT%H:%M:%SZ")


class Failure(Exception):
    """An answer the session did not expect (the library already checked the schema)."""


def expect(what: str, got: Any, want: Any) -> None:
    if got != want:
        raise Failure(f"{what}: expected {want!r}, got {got!r}")


@dataclass
class Report:
    protocol: str
    charger_id: str
    transaction_id: Any = None
    statuses: dict[str, Any] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(
            {
                "protocol": self.protocol,
                "chargerId": self.charger_id,
                "transactionId": self.transaction_id,
                "statuses": self.statuses,
                "calls": self.calls,
            },
            separators=(",", ":"),
        )


async def call(cp: Any, report: Report, request: Any) -> Any:
    """One CALL; suppress=False makes a CALLERROR raise instead of returning None."""
    response = await cp.call(request, suppress=False)
    report.calls.append(type(request).__name__)
    return response


async def session_16(cp: ChargePoint16, args: argparse.Namespace, report: Report) -> None:
    boot = await call(
        cp,
        report,
        call16.BootNotification(
            charge_point_vendor="chargestream-interop",
            charge_point_model="python-ocpp",
            firmware_version="1.0",
        ),
    )
    report.statuses["boot"] = boot.status
    expect("BootNotification status", boot.status, enums16.RegistrationStatus.accepted)
    if not (isinstance(boot.interval, int) and boot.interval > 0):
        raise Failure(f"BootNotification interval: {boot.interval!r}")

    heartbeat = await call(cp, report, call16.Heartbeat())
    datetime.fromisoformat(heartbeat.current_time.replace("Z", "+00:00"))

    await call(
        cp,
        report,
        call16.StatusNotification(
            connector_id=args.connector,
            error_code=enums16.ChargePointErrorCode.no_error,
            status=enums16.ChargePointStatus.preparing,
            timestamp=at(0),
        ),
    )

    authorize = await call(cp, report, call16.Authorize(id_tag=args.id_tag))
    report.statuses["authorize"] = authorize.id_tag_info["status"]
    expect("Authorize status", report.statuses["authorize"], "Accepted")

    start = await call(
        cp,
        report,
        call16.StartTransaction(
            connector_id=args.connector,
            id_tag=args.id_tag,
            meter_start=METER_START_WH,
            timestamp=at(0),
        ),
    )
    report.transaction_id = start.transaction_id
    report.statuses["start"] = start.id_tag_info["status"]
    expect("StartTransaction status", report.statuses["start"], "Accepted")

    await call(
        cp,
        report,
        call16.StatusNotification(
            connector_id=args.connector,
            error_code=enums16.ChargePointErrorCode.no_error,
            status=enums16.ChargePointStatus.charging,
            timestamp=at(0),
        ),
    )

    for n, wh in enumerate(METER_VALUES_WH, start=1):
        await call(
            cp,
            report,
            call16.MeterValues(
                connector_id=args.connector,
                transaction_id=start.transaction_id,
                meter_value=[
                    dt16.MeterValue(
                        timestamp=at(n),
                        sampled_value=[
                            dt16.SampledValue(
                                value=str(wh),
                                context=enums16.ReadingContext.sample_periodic,
                                measurand=enums16.Measurand.energy_active_import_register,
                                unit=enums16.UnitOfMeasure.wh,
                            )
                        ],
                    )
                ],
            ),
        )

    stop = await call(
        cp,
        report,
        call16.StopTransaction(
            meter_stop=METER_STOP_WH,
            timestamp=at(len(METER_VALUES_WH) + 1),
            transaction_id=start.transaction_id,
            reason=enums16.Reason.ev_disconnected,
            id_tag=args.id_tag,
        ),
    )
    report.statuses["stop"] = (stop.id_tag_info or {}).get("status")

    await call(
        cp,
        report,
        call16.StatusNotification(
            connector_id=args.connector,
            error_code=enums16.ChargePointErrorCode.no_error,
            status=enums16.ChargePointStatus.available,
            timestamp=at(len(METER_VALUES_WH) + 1),
        ),
    )


def energy_201(wh: int, step: int, context: enums201.ReadingContextEnumType) -> Any:
    return dt201.MeterValueType(
        timestamp=at(step),
        sampled_value=[
            dt201.SampledValueType(
                value=wh,
                context=context,
                measurand=enums201.MeasurandEnumType.energy_active_import_register,
                unit_of_measure=dt201.UnitOfMeasureType(
                    unit=enums201.StandardizedUnitsOfMeasureType.wh
                ),
            )
        ],
    )


async def session_201(cp: ChargePoint201, args: argparse.Namespace, report: Report) -> None:
    id_token = dt201.IdTokenType(id_token=args.id_tag, type=enums201.IdTokenEnumType.iso14443)
    boot = await call(
        cp,
        report,
        call201.BootNotification(
            charging_station=dt201.ChargingStationType(
                vendor_name="chargestream-interop", model="python-ocpp", firmware_version="1.0"
            ),
            reason=enums201.BootReasonEnumType.power_up,
        ),
    )
    report.statuses["boot"] = boot.status
    expect("BootNotification status", boot.status, enums201.RegistrationStatusEnumType.accepted)
    if not (isinstance(boot.interval, int) and boot.interval > 0):
        raise Failure(f"BootNotification interval: {boot.interval!r}")

    heartbeat = await call(cp, report, call201.Heartbeat())
    datetime.fromisoformat(heartbeat.current_time.replace("Z", "+00:00"))

    await call(
        cp,
        report,
        call201.StatusNotification(
            timestamp=at(0),
            connector_status=enums201.ConnectorStatusEnumType.occupied,
            evse_id=1,
            connector_id=args.connector,
        ),
    )

    authorize = await call(cp, report, call201.Authorize(id_token=id_token))
    report.statuses["authorize"] = authorize.id_token_info["status"]
    expect("Authorize status", report.statuses["authorize"], "Accepted")

    tx_id = args.transaction_id
    report.transaction_id = tx_id
    seq_no = 0

    started = await call(
        cp,
        report,
        call201.TransactionEvent(
            event_type=enums201.TransactionEventEnumType.started,
            timestamp=at(0),
            trigger_reason=enums201.TriggerReasonEnumType.authorized,
            seq_no=seq_no,
            transaction_info=dt201.TransactionType(
                transaction_id=tx_id, charging_state=enums201.ChargingStateEnumType.charging
            ),
            evse=dt201.EVSEType(id=1, connector_id=args.connector),
            id_token=id_token,
            meter_value=[
                energy_201(
                    METER_START_WH, 0, enums201.ReadingContextEnumType.transaction_begin
                )
            ],
        ),
    )
    report.statuses["start"] = (started.id_token_info or {}).get("status")
    expect("TransactionEvent Started idTokenInfo.status", report.statuses["start"], "Accepted")

    for n, wh in enumerate(METER_VALUES_WH, start=1):
        seq_no += 1
        await call(
            cp,
            report,
            call201.TransactionEvent(
                event_type=enums201.TransactionEventEnumType.updated,
                timestamp=at(n),
                trigger_reason=enums201.TriggerReasonEnumType.meter_value_periodic,
                seq_no=seq_no,
                transaction_info=dt201.TransactionType(transaction_id=tx_id),
                meter_value=[energy_201(wh, n, enums201.ReadingContextEnumType.sample_periodic)],
            ),
        )

    seq_no += 1
    end_step = len(METER_VALUES_WH) + 1
    ended = await call(
        cp,
        report,
        call201.TransactionEvent(
            event_type=enums201.TransactionEventEnumType.ended,
            timestamp=at(end_step),
            trigger_reason=enums201.TriggerReasonEnumType.ev_communication_lost,
            seq_no=seq_no,
            transaction_info=dt201.TransactionType(
                transaction_id=tx_id, stopped_reason=enums201.ReasonEnumType.ev_disconnected
            ),
            meter_value=[
                energy_201(
                    METER_STOP_WH, end_step, enums201.ReadingContextEnumType.transaction_end
                )
            ],
        ),
    )
    report.statuses["stop"] = (ended.id_token_info or {}).get("status")

    await call(
        cp,
        report,
        call201.StatusNotification(
            timestamp=at(end_step),
            connector_status=enums201.ConnectorStatusEnumType.available,
            evse_id=1,
            connector_id=args.connector,
        ),
    )


async def run(args: argparse.Namespace) -> Report:
    url = f"{args.url.rstrip('/')}/{args.id}"
    credentials = base64.b64encode(f"{args.id}:{args.password}".encode()).decode("ascii")
    async with connect(
        url,
        subprotocols=[Subprotocol(args.protocol)],
        additional_headers={"Authorization": f"Basic {credentials}"},
        open_timeout=RESPONSE_TIMEOUT_S,
    ) as ws:
        expect("negotiated subprotocol", ws.subprotocol, args.protocol)
        report = Report(protocol=args.protocol, charger_id=args.id)
        cp: Any
        if args.protocol == "ocpp1.6":
            cp = ChargePoint16(args.id, ws, response_timeout=RESPONSE_TIMEOUT_S)
        else:
            cp = ChargePoint201(args.id, ws, response_timeout=RESPONSE_TIMEOUT_S)
        listener = asyncio.create_task(cp.start())
        try:
            session = session_16 if args.protocol == "ocpp1.6" else session_201
            await session(cp, args, report)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        return report


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="ws://HOST:PORT/ocpp (the id is appended)")
    parser.add_argument("--id", required=True, help="charger identity, also the Basic user")
    parser.add_argument("--protocol", required=True, choices=["ocpp1.6", "ocpp2.0.1"])
    parser.add_argument("--password", required=True, help="HTTP Basic password")
    parser.add_argument("--id-tag", required=True, help="the token authorizing the session")
    parser.add_argument("--connector", type=int, default=1, help="connector id (default 1)")
    parser.add_argument(
        "--transaction-id",
        default="py-201-1",
        help="2.0.1 only: the transactionId the charger assigns (default py-201-1)",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    # The library logs every frame it sends and receives at INFO: on stderr, for diagnosis.
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        report = asyncio.run(asyncio.wait_for(run(args), OVERALL_TIMEOUT_S))
    except Exception as error:  # noqa: BLE001 - any failure fails the interop run
        logging.getLogger("charger").exception("interop session failed")
        print(f"charger.py: FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(report.to_json(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
