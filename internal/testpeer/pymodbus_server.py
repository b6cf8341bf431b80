"""Modbus TCP server for facgw's integration tests (Debian's pymodbus 3.0.0).

Written into the test's temp dir and run by internal/testpeer as
    /usr/bin/python3 -I -u pymodbus_server.py LAYOUT.json
LAYOUT.json (written by the Go test) gives the address to bind, the register
layout per unit id and the device identification:
    {"host": "127.0.0.1", "port": 15020, "log_level": "WARNING",
     "units": {"1": {"hr": {"0": 123}, "ir": {}, "co": {"3": true}, "di": {}}},
     "identity": {"VendorName": "...", "ProductCode": "...", ...}}

Every data block is a ModbusSparseDataBlock holding exactly the addresses
the test mapped, so a read or write touching any unmapped address is
answered with exception 02 (Illegal Data Address). zero_mode=True makes the
address in the layout the address on the wire. single=False serves each unit
id separately; pymodbus 3.0.0 silently drops requests for other unit ids
(no reply at all), unless unit id 0 or 255 is served, in which case its
framer accepts every unit id and answers unknown ones with exception 0x0B.
"""

import asyncio
import json
import logging
import sys

from pymodbus.datastore import (
    ModbusServerContext,
    ModbusSlaveContext,
    ModbusSparseDataBlock,
)
from pymodbus.device import ModbusDeviceIdentification
from pymodbus.server.async_io import ModbusTcpServer

log = logging.getLogger("testpeer")


def block(values):
    """Return a sparse block with exactly the given address -> value map."""
    return ModbusSparseDataBlock({int(a): int(v) for a, v in (values or {}).items()})


def slave(unit):
    return ModbusSlaveContext(
        hr=block(unit.get("hr")),
        ir=block(unit.get("ir")),
        co=block(unit.get("co")),
        di=block(unit.get("di")),
        zero_mode=True,
    )


def datastore(layout):
    """Return (server context, identity or None, sorted unit ids) for a layout."""
    slaves = {int(u): slave(spec) for u, spec in layout["units"].items()}
    identity = None
    if layout.get("identity"):
        identity = ModbusDeviceIdentification(info_name=layout["identity"])
    return ModbusServerContext(slaves=slaves, single=False), identity, sorted(slaves)


async def serve(layout):
    context, identity, units = datastore(layout)
    # Created inside the running loop: ModbusTcpServer binds to the loop it
    # finds at construction.
    server = ModbusTcpServer(
        context,
        identity=identity,
        address=(layout["host"], int(layout["port"])),
        allow_reuse_address=True,
    )
    task = asyncio.create_task(server.serve_forever())
    await server.serving
    log.warning(
        "serving modbus tcp on %s:%s, unit ids %s",
        layout["host"], layout["port"], units,
    )
    await task


def main(serve=serve):
    """Load the layout named on the command line, set up logging, serve."""
    with open(sys.argv[1], encoding="utf-8") as f:
        layout = json.load(f)
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, layout.get("log_level") or "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,  # pymodbus.constants already called basicConfig
    )
    asyncio.run(serve(layout))


if __name__ == "__main__":
    main()
