"""Faithful local fakes of the accounting systems, as real HTTP servers (one module per provider)."""
