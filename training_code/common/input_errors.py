"""Errors for bad requests and bad rows. Each type is distinct and carries the HTTP status a
server should answer with, so a bad request is a 4xx that names the problem, never a 500."""

from __future__ import annotations


class InputError(ValueError):
    """A request or row the model cannot score. `status_code` is what a server returns."""

    status_code = 400


class EmptyInputError(InputError):
    pass


class UnsupportedContentTypeError(InputError):
    status_code = 415


class ColumnCountError(InputError):
    pass


class UnknownColumnError(InputError):
    pass


class MissingColumnError(InputError):
    pass


class NonNumericValueError(InputError):
    pass


class InvalidDateError(InputError):
    pass


class UnknownCategoryError(InputError):
    pass


class MalformedPayloadError(InputError):
    pass
