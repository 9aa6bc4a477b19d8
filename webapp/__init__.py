"""The deployed web service: an event-sourced call counter with deploy history (see webapp.app)."""
