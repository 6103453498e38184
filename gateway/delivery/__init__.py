"""Delivery: the durable SQLite outbox and the MQTT publisher that drains it (adapters, I/O)."""
