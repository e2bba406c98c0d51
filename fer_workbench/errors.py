"""The package's one error type: a one-line message the CLI prints before exiting non-zero."""


class WorkbenchError(Exception):
    """A user-facing failure (bad file, bad row, bad parameter) with a one-line message."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
