"""An independent Modbus client for the simulator tests: pymodbus (Debian's, 3.x).

Usage: python3 pymodbus-client.py PORT FRAMING(socket|rtu) UNIT
Runs a fixed sequence of reads and writes and prints one JSON object with the results.
"""
import json
import sys

from pymodbus.client import ModbusTcpClient
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.framer.socket_framer import ModbusSocketFramer

port, framing, unit = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
framer = ModbusRtuFramer if framing == "rtu" else ModbusSocketFramer
client = ModbusTcpClient("127.0.0.1", port=port, framer=framer, timeout=5, retries=0)
if not client.connect():
    sys.exit("cannot connect")


def regs(result):
    if result.isError():
        return {"error": str(result)}
    return list(result.registers)


def bits(result, count):
    if result.isError():
        return {"error": str(result)}
    return [bool(b) for b in result.bits[:count]]


out = {
    "holding": regs(client.read_holding_registers(100, 3, slave=unit)),
    "input": regs(client.read_input_registers(10, 2, slave=unit)),
    "coils": bits(client.read_coils(5, 3, slave=unit), 3),
    "discrete": bits(client.read_discrete_inputs(12, 2, slave=unit), 2),
}
client.write_registers(300, [7, 8, 9], slave=unit)
client.write_register(303, 10, slave=unit)
client.write_coils(20, [True, False, True], slave=unit)
client.write_coil(23, True, slave=unit)
out["written_registers"] = regs(client.read_holding_registers(300, 4, slave=unit))
out["written_coils"] = bits(client.read_coils(20, 4, slave=unit), 4)
out["bad_address"] = str(client.read_holding_registers(65535, 2, slave=unit))
client.close()
print(json.dumps(out))
