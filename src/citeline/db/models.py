"""Every ORM model, imported in one place so Alembic and `create_all` see the whole schema."""

from citeline.db.base import Base
from citeline.jobs.models import Job, JobEvent

__all__ = ["Base", "Job", "JobEvent"]
