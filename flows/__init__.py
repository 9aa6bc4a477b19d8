"""The delivery pipeline: Prefect flows, the deployment targets and the webhook that triggers them."""
