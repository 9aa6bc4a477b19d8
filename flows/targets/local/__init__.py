"""The local Docker target: two environments as containers behind HAProxy on 127.0.0.1 (see `target`)."""
