"""The webapp's one exception root and its branches.

Every failure the service raises on purpose is a `WebappError` whose message says what to fix.
The webapp is deployed alone (the image holds ``webapp/`` only), so it has its own root, apart
from the pipeline's ``flows.errors``:

    WebappError
    ├── SettingsError        DELIVERY_CONF, HOST/PORT: the file or variable and the key to fix
    ├── BuildInfoError       webapp/buildinfo.json malformed, or git cannot describe the checkout
    ├── StoreError           the journal store cannot be opened or written
    ├── JournalDamaged       a journal entry cannot be decoded: the service refuses to start
    ├── CallNotRecorded      a call's journal write failed: no number is shown (503)
    ├── ServiceClosed        the service is stopping and takes no more calls (503)
    ├── EventDecodeError     a journal entry that is not an event
    └── SnapshotDecodeError  a snapshot that cannot be trusted (recovery replays the journal)
"""

from __future__ import annotations


class WebappError(Exception):
    """Root of every deliberate failure of the webapp; the message tells the user what to do."""


class SettingsError(WebappError):
    """The service's settings (config file, environment) are missing or wrong; names the key to fix."""


class BuildInfoError(WebappError):
    """buildinfo.json exists but is malformed, or git cannot describe the checkout."""


class StoreError(WebappError):
    """The store cannot be opened or written; the message says which setting or resource to look at."""


class JournalDamaged(WebappError):
    """A journal entry cannot be decoded; the service refuses to start rather than lose it."""


class CallNotRecorded(WebappError):
    """The journal write for a call failed; the caller must not be told a number."""


class ServiceClosed(WebappError):
    """The service is shutting down and takes no more calls."""


class EventDecodeError(WebappError):
    """A journal entry that is not a valid event (the journal is damaged or written by something else)."""


class SnapshotDecodeError(WebappError):
    """A snapshot that cannot be trusted; recovery falls back to replaying the journal."""
