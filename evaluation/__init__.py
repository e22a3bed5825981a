"""Scoring InstructCV's answer images (and running the model to get them) the standard way.

``evaluate.py`` is a thin command line over this package:

- ``pairs``: reading an evaluation pairs folder (DESIGN.md section 4) into metadata rows;
- ``queries``: what gets asked: every pairs sample plus seeded absent-class queries, ``--limit`` subsets;
- ``ground_truth``: the truth of a query, from the raw annotation through the dataset reader;
- ``protocols``: the metric of each task and dataset (written down per dataset), and the original
  project's scoring for ``--protocol instructcv``;
- ``answers`` / ``inference``: the answers cache and running a model over the queries;
- ``scoring``: answers + truth -> metrics.json (DESIGN.md section 6);
- ``report``: what ``evaluate.py`` prints (metrics, absent-class summary, failures);
- ``table``: merging result files into the paper's table (Markdown, CSV, PNG).

docs/ARCHITECTURE.md section 6 lists the interfaces.
"""
