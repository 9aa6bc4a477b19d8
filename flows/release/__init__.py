"""Stage 3: the release onto a target: pure decisions, operations over a `Target`, one task per step."""
