"""Data: read user files into records, check them, and turn them into model batches; the
server's conversation log (``conversation_log``), exported as training data by
``transform.log_export``."""
