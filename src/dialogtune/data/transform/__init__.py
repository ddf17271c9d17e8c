"""Changing data files: ``data fix``, ``convert``, ``split`` / ``sample`` and the writers
that put records back in their own format (atomically, through ``dialogtune.atomic``)."""
