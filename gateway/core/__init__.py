"""The gateway's pure core: no asyncio, bleak, paho, sqlite3 or logging; time comes in as data."""
