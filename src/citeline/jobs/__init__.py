"""Durable background jobs: RQ queues, a database record per job, ordered event streams."""
