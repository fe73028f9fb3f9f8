"""What this CPU computes natively, so defaults follow the hardware rather than habit.

Measured on this project's AVX2 build machine (benchmarks/bench_image.py): bf16 autocast trained the
CNN at 0.10x the fp32 speed (emulated bf16), and the int8 ONNX model ran at 0.64x the fp32 one
(no VNNI: int8 dot products take extra instructions). Both only pay off where the CPU has them.
No torch or onnxruntime import here: training and serving both use it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # "bf16": Arm (Graviton3 and later)
# Int8 dot-product instructions: VNNI (AVX-512 or AVX), AMX, and Arm's dot product (Graviton2+).
INT8_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8", "asimddp"})


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """CPU feature flags (x86 "flags", Arm "Features"); empty where /proc/cpuinfo does not exist."""
    with contextlib.suppress(OSError):
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                return set(value.split())
    return set()


def native_bf16(flags: set[str]) -> bool:
    return bool(BF16_FLAGS & flags)


def native_int8_dot(flags: set[str]) -> bool:
    return bool(INT8_DOT_FLAGS & flags)
