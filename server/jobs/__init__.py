"""Training jobs: a SQLite store, pluggable backends (``local`` subprocess; ``ray`` later) and the manager."""

from livedenoise.server.jobs.backend import BackendPoll, JobBackend, JobLaunch
from livedenoise.server.jobs.manager import JobManager
from livedenoise.server.jobs.store import JobRecord, JobState, JobStore

__all__ = ["BackendPoll", "JobBackend", "JobLaunch", "JobManager", "JobRecord", "JobState", "JobStore"]
