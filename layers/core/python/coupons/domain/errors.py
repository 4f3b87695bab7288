"""Domain errors: values with a stable machine-readable code; the API maps their kind to a status."""

from __future__ import annotations

from enum import Enum


class Kind(Enum):
    INVALID = "invalid"  # the request itself is wrong
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"  # valid request, refused by the current state
    UNPROCESSABLE = "unprocessable"
    TOO_LARGE = "too_large"  # the request body is above the documented size
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    TOO_MANY_REQUESTS = "too_many_requests"  # 429: the error carries retry_after (seconds)


class DomainError(Exception):
    kind: Kind = Kind.INVALID
    code: str = "invalid_request"
    title: str = "Invalid request"

    def __init__(self, detail: str | None = None, *, field: str | None = None, **extra: object):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.field = field
        self.extra = extra


class InvalidField(DomainError):
    """A value the schema accepts but a rule refuses (e.g. valid_until before valid_from)."""

    code = "validation_failed"  # the same code as a schema refusal: to a caller both are bad input
    title = "The request is not valid"

    def __init__(self, detail: str | None = None, *, field: str | None = None, **extra: object):
        extra.setdefault("errors", [{"field": field, "message": detail, "type": "invalid_field"}])
        super().__init__(detail, field=field, **extra)


class InvalidCursor(DomainError):
    code = "invalid_cursor"
    title = "The paging cursor is not one this API issued"


class PayloadTooLarge(DomainError):
    kind = Kind.TOO_LARGE
    code = "payload_too_large"
    title = "The request body is too large"


class UnsupportedMediaType(DomainError):
    kind = Kind.UNSUPPORTED_MEDIA_TYPE
    code = "unsupported_media_type"
    title = "The request body must be application/json"


class Unauthenticated(DomainError):
    kind = Kind.UNAUTHENTICATED
    code = "unauthenticated"
    title = "A valid x-api-key header is required"


class Forbidden(DomainError):
    kind = Kind.FORBIDDEN
    code = "forbidden"
    title = "This principal may not do that"


class NotFound(DomainError):
    kind = Kind.NOT_FOUND
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    kind = Kind.CONFLICT
    code = "conflict"
    title = "The current state does not allow this"


class Contention(Conflict):
    """Bounded retries ran out because others kept changing the same items: nothing was written."""

    code = "contention"
    title = "Too many concurrent changes to the same item; nothing was done, retry shortly"


class CampaignNotFound(NotFound):
    code = "campaign_not_found"
    title = "No such campaign"


class AuditEntryNotFound(NotFound):
    code = "audit_entry_not_found"
    title = "No such audit entry, or not one this principal may see"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    title = "No such API key"


class IdempotencyKeyReused(DomainError):
    kind = Kind.UNPROCESSABLE
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used with a different request"


class IdempotencyRequestInFlight(DomainError):
    kind = Kind.CONFLICT
    code = "idempotency_request_in_flight"
    title = "A request with this Idempotency-Key is still being processed; retry later"
