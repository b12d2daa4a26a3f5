"""Weight storage: how an int8 weight tensor sits in flash and is decoded before use.

Each storage (a module here, registered in `registry.STORAGES`) has a Python encoder and decoder
and a C decoder in the kernel library (autotune/codegen/kernels/at_decode_*.c) that reads the
same blob bit for bit. `auto.choose` picks the smallest storage whose decode time fits a budget.
"""
from autotune.codecs._container import CodecError
from autotune.codecs.auto import choose
from autotune.codecs.base import DecodeCall, Encoded, Storage
from autotune.codecs.entropy import entropy_bits, entropy_bound_bytes
from autotune.codecs.registry import STORAGES, decode, decode_row, encode, get_storage, storage_of

__all__ = ["STORAGES", "CodecError", "DecodeCall", "Encoded", "Storage", "choose", "decode",
           "decode_row", "encode", "entropy_bits", "entropy_bound_bytes", "get_storage", "storage_of"]
