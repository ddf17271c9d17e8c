"""Data quality: the findings of ``data check`` (checks, near duplicates, personal data,
dialogue structure), the check API itself and its JSON / HTML / terminal reports."""
