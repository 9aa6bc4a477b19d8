"""Stage 1: the commit checked out into a clean directory, and its fast tests run (`tasks`)."""
