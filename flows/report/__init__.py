"""At a run's end, what it tells people: the release report in the UI (`artifacts`), the chat notification."""
