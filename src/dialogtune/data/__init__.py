"""Data: read user files into records, check them, and turn them into model batches."""
