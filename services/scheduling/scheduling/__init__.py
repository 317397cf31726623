"""Peer-network scheduling: networks, meetings, peer reviews and coaching on real school calendars."""
