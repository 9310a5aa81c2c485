"""Monitoring of the serving API: latency, block and recitation rates, input drift against training data."""
