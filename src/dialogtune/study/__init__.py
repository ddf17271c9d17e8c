"""Studies: many runs of one data set, trained and evaluated the same way, then compared.

``compare`` (models × strategies × seeds) and ``curve`` (training-set sizes × seeds) are
orchestration above training and evaluation, like ``pipeline.py``: each cell is an ordinary
run (``pipeline.train_run`` then ``pipeline.evaluate_run``) in its own child process
(``cells.py``, ``child.py``), so a study is resumable cell by cell and each cell's peak
memory is its own.
"""
