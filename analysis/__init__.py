"""Stability analysis of vitstab sweeps: EDFs, stability statistics and a shareable report.

``python -m analysis.edf results/`` reads every ``trials.csv`` below the given folders and
writes figures, ``summary.csv`` and ``report.html``. The modules each do one job:
``load`` (read and validate), ``stats`` (EDFs, bands, tests), ``plots`` (seaborn figures),
``report`` (self-contained HTML), ``edf`` (the command line) and ``fixture`` (fake results
for tests, the benchmark and the notebook); ``errors`` holds AnalysisError. Heavy
libraries are imported by those modules only, so importing this package stays cheap.
"""
