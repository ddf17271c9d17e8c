"""Run directories: their file names (``layout.RunDir``) and what a run was started with
(``fingerprint``, to refuse resuming it with other settings or data)."""
