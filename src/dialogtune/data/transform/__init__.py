"""Changing data files: ``data fix``, ``convert``, ``split`` / ``sample``, ``export-logs`` (``log_export``) and the writers
that put records back in their own format (atomically, through ``dialogtune.atomic``)."""
