"""An independent Modbus TCP server for plc2mqtt's tests: pymodbus (Debian python3-pymodbus).

Reads one JSON line on stdin: {"values": [{"address", "type", "order", "value", "length"?,
"placement"?}...], "coils": {offset: bool}, "discrete_inputs": {offset: bool}}. Each value is
packed with Python's struct module (not plc2mqtt's codecs) into holding registers starting at
its address, in the byte order given by its letters (A = most significant byte). Prints
{"port": N} once listening on 127.0.0.1, and exits when stdin closes.
"""
import asyncio
import json
import struct
import sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server.async_io import ModbusTcpServer

FORMATS = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f",
           "int64": ">q", "uint64": ">Q", "float64": ">d"}
SIZE = 2000


def pack(entry):
    kind = entry["type"]
    if kind == "string":
        data = entry["value"].encode("latin-1").ljust(entry["length"] * 2, b"\0")
        if entry.get("placement") == "low_first":
            data = bytes(b for i in range(0, len(data), 2) for b in (data[i + 1], data[i]))
        return data
    value = entry["value"]
    value = float(value) if kind.startswith("float") else int(value)
    big_endian = struct.pack(FORMATS[kind], value)
    order = entry["order"]
    return bytes(big_endian[ord(letter) - ord("A")] for letter in order)


async def main():
    spec = json.loads(sys.stdin.readline())
    registers = [0] * SIZE
    for entry in spec["values"]:
        data = pack(entry)
        for i in range(0, len(data), 2):
            registers[entry["address"] + i // 2] = (data[i] << 8) | data[i + 1]
    coils = [False] * SIZE
    for offset, value in spec.get("coils", {}).items():
        coils[int(offset)] = value
    inputs = [False] * SIZE
    for offset, value in spec.get("discrete_inputs", {}).items():
        inputs[int(offset)] = value
    slave = ModbusSlaveContext(
        co=ModbusSequentialDataBlock(0, coils),
        di=ModbusSequentialDataBlock(0, inputs),
        hr=ModbusSequentialDataBlock(0, registers),
        ir=ModbusSequentialDataBlock(0, registers),
        zero_mode=True,
    )
    server = ModbusTcpServer(ModbusServerContext(slaves=slave, single=True), address=("127.0.0.1", 0))
    task = asyncio.create_task(server.serve_forever())
    await server.serving
    print(json.dumps({"port": server.server.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    task.cancel()


asyncio.run(main())
