"""Local stand-ins for remote services, so integration tests speak real HTTP offline."""
