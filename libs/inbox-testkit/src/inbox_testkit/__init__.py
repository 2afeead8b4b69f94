"""Test and development infrastructure of the inbox: local servers, the pytest harness, the whole stack.

Never imported by a service at run time (runtime images do not carry it)."""
