"""The bare-RQ baseline's job: a module that imports nothing, as a plain RQ user's would."""


def noop() -> None:
    return None
