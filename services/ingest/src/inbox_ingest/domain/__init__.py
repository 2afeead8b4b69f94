"""Pure logic of the Meta edge (no I/O)."""

from inbox_ingest.domain.normalise import NormalisedEvent, NotAWebhook, normalise, normalise_raw, parse_body

__all__ = ["NormalisedEvent", "NotAWebhook", "normalise", "normalise_raw", "parse_body"]
