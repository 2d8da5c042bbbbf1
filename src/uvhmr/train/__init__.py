"""Training utilities: resumable, checkpointed loops for the workflow's training rules."""
