"""Tuning jobs: the store on disk, the job object, launching and resuming."""
