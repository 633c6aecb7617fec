"""The one base class of mistakes a user can fix: the CLI prints them without a traceback."""


class UserFacingError(Exception):
    """Bad data, a bad option or config, a missing model or store: say what to do next."""
