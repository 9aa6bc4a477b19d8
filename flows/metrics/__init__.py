"""Delivery performance: DORA's four keys computed from the runs the control plane records.

`dora.py` turns plain records of release and recovery runs into the four figures (pure);
`history.py` reads those records from the control plane's API; `flows/cli/metrics.py` prints them.
"""
