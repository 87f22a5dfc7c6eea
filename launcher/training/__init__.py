"""Training repositories the launcher knows how to drive through their own command line."""
