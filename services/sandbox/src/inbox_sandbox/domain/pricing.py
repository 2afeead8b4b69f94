"""The 24-hour customer service window, and what a send costs (Meta's per-message pricing)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WINDOW_S = 24 * 3600



def window_open(last_inbound: int | None, now: float) -> bool:
    """Free-form messages may go out only within 24 h of the customer's last inbound message."""
    return last_inbound is not None and now - last_inbound < WINDOW_S


@dataclass(frozen=True)
class Billing:
    category: str  # service, utility, marketing, authentication
    billable: bool
    pricing_type: str  # regular, free_customer_service

    def pricing(self) -> dict[str, Any]:
        return {"billable": self.billable, "pricing_model": "PMP", "type": self.pricing_type,
                "category": self.category}


def billing_for(template_category: str | None, in_window: bool) -> Billing:
    """Per-message pricing: free-form replies and utility templates inside the window are free."""
    if template_category is None:
        return Billing("service", False, "free_customer_service")
    category = template_category.lower()
    if category == "utility" and in_window:
        return Billing("utility", False, "free_customer_service")
    return Billing(category, True, "regular")
