"""The one exception type for bad user input: the CLI prints its message on one line and exits non-zero."""


class UserError(ValueError):
    """Bad input from the user (config, path, prompt, shape); the message names the problem and the fix."""
