"""Stage 1: the commit checked out into a clean directory, its version from git, its fast tests run."""
