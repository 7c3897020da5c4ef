"""Test doubles that speak real wire protocols (the fake IB Gateway)."""
