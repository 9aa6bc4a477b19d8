"""The pipeline's steps as Prefect tasks, one module per group: source, image, release.

Each task is a thin wrapper over the operations in `flows.build` and `flows.release`; the
pure parts the tasks need (cache keys, run names, test-report parsing) live beside them.
"""
