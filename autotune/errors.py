"""Errors a user can act on. The CLI prints them without a traceback and exits with `exit_code`."""


class AutotuneError(Exception):
    """Base for expected failures: bad input, missing tools. The message names file and field."""

    exit_code = 1


class ConfigError(AutotuneError):
    """A malformed or invalid experiment YAML."""

    exit_code = 2


class DataError(AutotuneError):
    """A data file that cannot be read or does not match what the config says."""

    exit_code = 2


class ModelImportError(AutotuneError):
    """A .tflite file that is corrupt or uses an op, dtype or option the IR does not support."""

    exit_code = 2


class CodegenError(AutotuneError):
    """A graph the kernel library cannot run: names the graph, the op and why."""


class ToolchainError(AutotuneError):
    """A compiler or emulator that is missing or failed."""

    exit_code = 3
