"""Membership: who belongs to the partnership, since when and in what capacity."""
