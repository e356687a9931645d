"""The one error tree.  Every message names the file, line, object and value."""

from __future__ import annotations


class VerifierError(Exception):
    """Base of every error the verifier raises on purpose."""


class InputError(VerifierError):
    """Bad input: the CLI exits with code 2.

    ``where`` is ``file:line`` (or just the file, or an object id); ``text`` is
    the offending text or value.
    """

    def __init__(self, where: str, problem: str, text: str | None = None) -> None:
        self.where = where
        self.problem = problem
        self.text = text
        message = f"{where}: error: {problem}"
        if text is not None:
            message += f": {text!r}"
        super().__init__(message)


class SnapshotError(InputError):
    """A snapshot file that cannot be read or parsed."""


class NeutronDataError(InputError):
    """neutron.json holds something the verifier cannot use."""


class UsageError(InputError):
    """A command-line argument that makes no sense (names the argument and value)."""


class SolverError(VerifierError):
    """Z3 failed in a way that is not a plain ``unknown`` answer."""
