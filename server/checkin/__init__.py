"""Check-in: lists, paired devices, the redeem decision, the websocket hub and its fan-out."""
