"""Stage 2, the pipeline's build operations: wheelhouse, image build, smoke test, push, EB bundle.

Each module pairs pure planning (what to run, how to read an answer) with a small executor
that talks to the Docker engine, a registry or git. The pipeline wraps the executors in
Prefect tasks; `python -m flows.image` drives them by hand (and `make demo` uses that).
"""
