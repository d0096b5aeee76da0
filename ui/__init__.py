"""The server, its API and its pages."""
