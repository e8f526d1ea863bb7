"""A fake NVML module for sampler and energy tests: hardware faked at the boundary. Every call
is logged (``calls``) so tests can count what one tick costs; ``broken`` names queries that
raise NVML's "Not Supported", ``refused_fields`` field ids the driver answers with an error
code, and ``batched=False`` a binding without nvmlDeviceGetFieldValues."""

from __future__ import annotations

import ctypes


class _Util:
    gpu, memory = 55, 20


class _Mem:
    used = 3 * 1024 * 1024 * 1024


class _Value(ctypes.Union):
    _fields_ = [("dVal", ctypes.c_double), ("uiVal", ctypes.c_uint), ("ulVal", ctypes.c_ulong),
                ("ullVal", ctypes.c_ulonglong), ("sllVal", ctypes.c_longlong), ("siVal", ctypes.c_int),
                ("usVal", ctypes.c_ushort)]


class _FieldValue:
    def __init__(self, field_id: int, ret: int, value_type: int = 0, number: float = 0.0):
        self.fieldId, self.nvmlReturn, self.valueType = field_id, ret, value_type
        self.value = _Value()
        if value_type == 3:
            self.value.ullVal = int(number)
        elif value_type == 1:
            self.value.uiVal = int(number)
        else:
            self.value.dVal = float(number)


class FakeNVML:
    def __init__(self, broken=(), refused_fields=(), batched=True, temperature=41, power_mw=250_000,
                 sm_clock=1980, throttle=0x4 | 0x1):
        self.broken = set(broken)
        self.refused = set(refused_fields)
        self.energy = 1_000_000.0
        self.temperature, self.power_mw, self.sm_clock, self.throttle = temperature, power_mw, sm_clock, throttle
        self.calls: list[str] = []
        if not batched:
            self.nvmlDeviceGetFieldValues = None  # shadows the method: a binding without it

    def _call(self, name):
        self.calls.append(name)
        if name in self.broken:
            raise RuntimeError(f"{name}: Not Supported")

    def nvmlDeviceGetHandleByIndex(self, i):
        return object()

    def nvmlDeviceGetUtilizationRates(self, h):
        self._call("util")
        return _Util()

    def nvmlDeviceGetMemoryInfo(self, h):
        self._call("memory")
        return _Mem()

    def nvmlDeviceGetTemperature(self, h, sensor):
        self._call("temperature")
        return self.temperature

    def nvmlDeviceGetPowerUsage(self, h):
        self._call("power")
        return self.power_mw

    def nvmlDeviceGetClockInfo(self, h, kind):
        self._call("clock")
        return self.sm_clock

    def nvmlDeviceGetCurrentClocksEventReasons(self, h):
        self._call("throttle")
        return self.throttle

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        self._call("energy")
        self.energy += 500.0
        return self.energy

    def nvmlDeviceGetFieldValues(self, h, ids):
        self._call("field_values")
        out = []
        for i in ids:
            if i in self.refused:
                out.append(_FieldValue(i, 3))  # NVML_ERROR_NOT_SUPPORTED
            elif i == 83:
                self.energy += 500.0
                out.append(_FieldValue(i, 0, 3, self.energy))
            elif i in (185, 186):
                out.append(_FieldValue(i, 0, 1, self.power_mw))
            else:
                out.append(_FieldValue(i, 0, 3, 4096))
        return out
