"""What the simulated Meta does, as pure functions: no I/O, the clock and randomness passed in. One module a
job: ids, pricing, signing, graph_errors, sends, templating, webhooks, simulator, pagination."""
