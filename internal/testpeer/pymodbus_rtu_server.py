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

The datastore is built by pymodbus_server.py (written beside this script),
exactly as for TCP (sparse blocks holding only the mapped addresses,
zero_mode=True, single=False): see its docstring.
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

import os
import sys

# -I leaves the script's directory off sys.path; the TCP server script
# beside this one holds the shared datastore code.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import serial  # noqa: E402
from pymodbus.server.async_io import ModbusSerialServer  # noqa: E402
from pymodbus.transaction import ModbusRtuFramer  # noqa: E402

from pymodbus_server import datastore, log, main  # noqa: E402


def write_ready(path):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(str(os.getpid()))
    os.replace(tmp, path)


async def serve(layout):
    context, identity, units = datastore(layout)
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
        line["stopbits"], parity, units,
    )
    write_ready(layout["ready_file"])
    await server.serve_forever()


if __name__ == "__main__":
    main(serve)
