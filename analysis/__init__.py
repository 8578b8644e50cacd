"""Stability analysis of vitstab sweeps: EDFs, stability statistics and a shareable report.

``python -m analysis.edf results/`` reads every ``trials.csv`` below the given folders and
writes figures, tables and ``report.html``. The modules each do one job: ``load`` (read,
validate, group by study identity), ``edf`` (EDF maths: ecdf, DKW band, Δ, within k, area;
run as a module it is the command line), ``stats`` (per-group summary, EDF tables, KS
comparisons, tuned results), ``expected`` (expected best error vs trials), ``paired``
(comparisons on shared draws), ``resolution`` (what the n can resolve, and larger sibling
sweeps of the same arms), ``ranges`` (good lr/wd ranges), ``importance`` (Optuna
importance), ``words`` (findings in words), ``plots`` (figures), ``report`` (HTML),
``cli`` (the command line) and ``fixture`` (fake results); ``errors`` holds AnalysisError. Heavy
libraries are imported by those modules only, so importing this package stays cheap.
"""
