"""Servers the project starts for itself: a throwaway PostgreSQL cluster (`postgres`)."""
