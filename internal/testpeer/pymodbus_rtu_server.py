"""Modbus RTU (serial) server for facgw's integration tests (Debian's pymodbus 3.0.0).

Written into the test's temp dir and run by internal/testpeer as
    /usr/bin/python3 -I -u pymodbus_rtu_server.py LAYOUT.json
LAYOUT.json (written by the Go test) gives the serial line to serve and the
same register layout and identity as pymodbus_server.py (the TCP server):
    {"serial": {"port": "/tmp/.../b", "baudrate": 9600, "bytesize": 8,
                "parity": "E", "stopbits": 1},
     "ready_file": "/tmp/.../ready", "log_level": "WARNING",
     "units": {"1": {"hr": {"0": 123}, "ir": {}, "co": {"3": true}, "di": {}}},
     "identity": {"VendorName": "...", ...}}

The datastore is built exactly as in pymodbus_server.py (sparse blocks holding
only the mapped addresses, zero_mode=True, single=False): see its docstring.
A request for a unit id that is not served is dropped by pymodbus 3.0.0's RTU
framer (no reply, the client times out), unless unit id 0 or 255 is served.

On a pty (/dev/pts/N) the port is opened without parity whatever the layout
asks: a pty has none, and pyserial fails to set it there (see serve()).

Once the serial port is open and its reader is registered on the event loop,
the server writes its PID into ready_file (atomically, by rename), which is
what the Go side waits for. pyserial's open() discards whatever was written
to the line before, so nothing sent earlier is answered late.

pymodbus 3.0.0 needs pyserial and serial_asyncio (Debian's python3-serial and
python3-serial-asyncio) for this, and also imports them for its TCP server.
"""

import asyncio
import json
import logging
import os
import sys

import serial
from pymodbus.datastore import (
    ModbusServerContext,
    ModbusSlaveContext,
    ModbusSparseDataBlock,
)
from pymodbus.device import ModbusDeviceIdentification
from pymodbus.server.async_io import ModbusSerialServer
from pymodbus.transaction import ModbusRtuFramer

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


def write_ready(path):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(str(os.getpid()))
    os.replace(tmp, path)


async def serve(layout):
    slaves = {int(u): slave(spec) for u, spec in layout["units"].items()}
    context = ModbusServerContext(slaves=slaves, single=False)
    identity = None
    if layout.get("identity"):
        identity = ModbusDeviceIdentification(info_name=layout["identity"])
    line = layout["serial"]
    parity = line["parity"]
    if os.path.realpath(line["port"]).startswith("/dev/pts/"):
        # A pty has no parity: its driver clears PARENB from every
        # TCSETS, and Debian's glibc then fails a tcsetattr that changes
        # nothing else with EINVAL (pyserial issue #196), which pyserial
        # does when serial_asyncio sets the timeout after opening. The
        # other end's parity setting is just as ignored, so the line
        # works the same without it.
        parity = "N"
    settings = dict(
        port=line["port"],
        baudrate=int(line["baudrate"]),
        bytesize=int(line["bytesize"]),
        parity=parity,
        stopbits=int(line["stopbits"]),
        timeout=0,  # the asyncio transport reads what is there
    )
    server = ModbusSerialServer(
        context, framer=ModbusRtuFramer, identity=identity, **settings
    )
    # Opens the port and registers its reader.
    await server.start()
    if server.transport is None:
        # ModbusSerialServer._connect logs why at DEBUG only: open the port
        # the way serial_asyncio does, to raise the error.
        port = serial.serial_for_url(settings.pop("port"), **settings)
        port.timeout = 0
        port.close()
        raise SystemExit(f"could not open serial port {line['port']}")
    log.warning(
        "serving modbus rtu on %s %d %d%s%d (parity set: %s), unit ids %s",
        line["port"], line["baudrate"], line["bytesize"], line["parity"],
        line["stopbits"], parity, sorted(slaves),
    )
    write_ready(layout["ready_file"])
    await server.serve_forever()


def main():
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
