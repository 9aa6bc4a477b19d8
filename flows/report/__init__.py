"""What a run tells people: the artifacts in the Prefect UI (`artifacts`) and the chat notification."""
