"""The GitHub webhook receiver: a signed `push` to a release branch starts a pipeline run.

Prefect OSS has no incoming webhooks, so this small Starlette app is ours. Its parts, one job each:
`signature` (HMAC check), `payload` (parsing and the deploy/ignore decision), `trigger` (creating
the Prefect flow run), `app` (HTTP), `cli` (`deliverypipeline webhook`).
"""
