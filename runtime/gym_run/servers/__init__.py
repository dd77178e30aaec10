"""Servers of a plan: the registry that builds them and the kinds of server (built-in, served over HTTP)."""
