"""User-facing errors: the CLI prints them as one line, without a traceback."""

from __future__ import annotations


class DialogtuneError(Exception):
    """An error caused by the user's input or environment, explained in one line."""


class DataError(DialogtuneError):
    """Bad input data, located by file, line and field so it can be fixed at once."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.path, self.line, self.field, self.reason = path, line, field, message
        where = ""
        if path is not None:
            where = str(path) + (f":{line}" if line is not None else "")
            where += f" (field '{field}')" if field else ""
            where += ": "
        elif field:
            where = f"field '{field}': "
        super().__init__(where + message)


class ConfigError(DialogtuneError):
    """An invalid configuration value or override."""


class ModelLoadError(DialogtuneError):
    """A model could not be found or loaded."""


class PromptError(DialogtuneError):
    """A conversation cannot become a prompt: the chat template refused it, or it does not
    fit the model's context. The client's fault: the server answers it with a 400."""
