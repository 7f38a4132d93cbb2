"""One exception class per pw_status."""

from __future__ import annotations


class Error(Exception):
    """Base of every pwcache error; `status` is the C status value."""

    status = -1


class NotFound(Error, KeyError):
    status = 1

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


class InvalidArgument(Error, ValueError):
    status = 2


class InvalidJson(Error, ValueError):
    status = 3


class PwIOError(Error, OSError):
    status = 4


class StorageError(Error):
    status = 5


class Unsupported(Error):
    status = 6


class CryptoError(Error):
    status = 7


class Panic(Error):
    status = 8


class InvalidInput(Error, ValueError):
    """Malformed input that is not JSON: a CSV warm file with no `proxy_url` column."""

    status = 9


_BY_STATUS = {cls.status: cls for cls in (NotFound, InvalidArgument, InvalidJson, PwIOError,
                                          StorageError, Unsupported, CryptoError, Panic,
                                          InvalidInput)}


def from_status(status: int, message: str) -> Error:
    cls = _BY_STATUS.get(status, Error)
    error = cls(message)
    error.status = status
    return error
