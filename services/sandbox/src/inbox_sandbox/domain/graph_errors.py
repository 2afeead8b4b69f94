"""The Graph API's error bodies: Meta's codes, titles and details, and the exception that carries one."""

from __future__ import annotations

from typing import Any

ERROR_HREF = "/documentation/business-messaging/whatsapp/support/error-codes"


_ERRORS: dict[int, tuple[str, str]] = {
    1: ("An unknown error occurred", "Please retry your request later."),
    2: ("Service temporarily unavailable", "Service temporarily unavailable. Please retry your request later."),
    4: ("Application request limit reached", "The app has reached its API call rate limit."),
    100: ("Invalid parameter", "Invalid parameter."),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
    131000: ("Something went wrong", "Message failed to send due to an unknown error."),
    131005: ("Access denied", "Permission is either not granted or has been removed."),
    131008: ("Required parameter is missing", "A required parameter is missing."),
    131009: ("Parameter value is not valid", "One or more parameter values are invalid."),
    131016: ("Service unavailable", "A service is temporarily unavailable. Please retry your request later."),
    131021: ("Recipient cannot be sender", "Sender and recipient phone number is the same."),
    131026: ("Message undeliverable",
             "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp "
             "phone number; the recipient has not accepted the new Terms of Service and Privacy Policy; "
             "the recipient is using an old WhatsApp version."),
    131031: ("Account has been locked", "The business account has been restricted or disabled."),
    131042: ("Business eligibility payment issue", "There was an error related to your payment method."),
    131047: ("Re-engagement message",
             "Message failed to send because more than 24 hours have passed since the customer last replied "
             "to this number."),
    131048: ("Spam rate limit hit", "Message failed to send because there are restrictions on how many "
             "messages can be sent from this phone number."),
    131049: ("This message was not delivered to maintain healthy ecosystem engagement.",
             "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."),
    131050: ("Unable to deliver the message", "The user has stopped marketing messages from this business."),
    131051: ("Unsupported message type", "Message type is currently not supported."),
    131052: ("Media download error", "Unable to download the media sent by the user."),
    131053: ("Media upload error", "Unable to upload the media used in the message."),
    131056: ("(Business Account, Consumer Account) pair rate limit hit",
             "Too many messages sent from the sender phone number to the same recipient phone number in a "
             "short period of time."),
    131057: ("Account in maintenance mode", "Business account is in maintenance mode."),
    131062: ("Business-scoped user ID not supported for this message",
             "You can only send authentication messages to recipients' phone numbers, not their "
             "business-scoped user IDs."),
    132000: ("Number of parameters does not match the expected number of params",
             "The number of parameters does not match the template."),
    132001: ("Template name does not exist in the translation", "Template does not exist."),
    132012: ("Parameter format does not match format in the created template",
             "Parameter format does not match the template."),
    132015: ("Template is paused", "Template is paused due to low quality."),
    132016: ("Template is disabled", "Template has been paused too many times due to low quality."),
    135000: ("Generic user error", "Message failed to send because of an unknown error with your request "
             "parameters."),
}


def error_title(code: int) -> str:
    return _ERRORS.get(code, ("Unknown error", ""))[0]


def error_details(code: int) -> str:
    return _ERRORS.get(code, ("", "An error occurred."))[1]


class GraphError(Exception):
    """A Graph API error answer: HTTP status plus Meta's ``{"error": {...}}`` body."""

    def __init__(self, http_status: int, code: int, message: str, *, details: str | None = None,
                 error_type: str = "OAuthException", subcode: int | None = None,
                 whatsapp: bool = True) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.message = message
        self.details = details
        self.error_type = error_type
        self.subcode = subcode
        self.whatsapp = whatsapp  # WhatsApp errors carry error_data; generic Graph ones do not

    def body(self, fbtrace_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.error_type, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.whatsapp:
            error["error_data"] = {"messaging_product": "whatsapp",
                                   "details": self.details if self.details is not None else self.message}
        error["fbtrace_id"] = fbtrace_id
        return {"error": error}


def whatsapp_error(code: int, details: str | None = None, http_status: int = 400,
                   message: str | None = None) -> GraphError:
    return GraphError(http_status, code, message or f"(#{code}) {error_title(code)}",
                      details=details if details is not None else error_details(code))


def invalid_parameter(details: str) -> GraphError:
    return whatsapp_error(100, details)


def oauth_error(missing: bool) -> GraphError:
    # Meta's answer to a missing or unusable token: OAuthException 190, no error_data.
    message = ("An active access token must be used to query information about the current user." if missing
               else "Invalid OAuth access token - Cannot parse access token")
    return GraphError(401, 190, message, whatsapp=False)


def unknown_object(node: str, method: str) -> GraphError:
    return GraphError(
        400, 100,
        f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, cannot be loaded due "
        "to missing permissions, or does not support this operation. Please read the Graph API documentation "
        "at https://developers.facebook.com/docs/graph-api",
        error_type="GraphMethodException", subcode=33, whatsapp=False)


def status_error(code: int, details: str | None = None) -> dict[str, Any]:
    """An entry of a failed status's ``errors`` (meta-docs-status-failed-131049.json)."""
    title = error_title(code)
    return {"code": code, "title": title, "message": title,
            "error_data": {"details": details if details is not None else error_details(code)},
            "href": ERROR_HREF}
