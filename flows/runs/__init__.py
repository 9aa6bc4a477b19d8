"""Around the steps of a run: its slot, its name, the record of its steps, its report and notification."""
