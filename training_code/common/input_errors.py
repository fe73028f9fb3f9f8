"""Errors for bad requests and bad rows. Each type is distinct and carries the HTTP status a
server should answer with, so a bad request is a 4xx that names the problem, never a 500.

Where AWS's inference toolkit is installed (the PyTorch serving images; `sagemaker-inference`), an
InputError is also one of its BaseInferenceToolkitError: the toolkit answers any other exception a
handler raises with a 500, and an error of that type with its own `status_code`. Elsewhere (local,
Azure ML) it is a plain ValueError, as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    _ServerError = Exception
else:
    try:
        from sagemaker_inference.errors import BaseInferenceToolkitError as _ServerError
    except ImportError:
        _ServerError = Exception


class InputError(ValueError, _ServerError):
    """A request or row the model cannot score. `status_code` is what a server returns."""

    status_code = 400

    def __init__(self, message: str) -> None:
        ValueError.__init__(self, message)
        # What the inference toolkit answers with: the reason phrase and the body's first line.
        self.message = self.phrase = message

    def __str__(self) -> str:
        return self.message


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
