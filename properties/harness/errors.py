"""The one usage error of every command and of the pytest plugin (light: no imports)."""


class UsageError(Exception):
    """Bad input to the checker (an option, a target name, a known-failures file): the
    command exits 2 with this one-line message."""
