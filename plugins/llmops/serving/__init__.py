"""Serving: a REST API over the registered `champion` (and a `challenger` canary), with safety and citations."""
