"""Stability analysis of vitstab sweeps: EDFs, stability statistics and a shareable report.

``python -m analysis results/`` (or ``python -m analysis.edf``) reads every ``trials.csv``
below the given folders and writes figures, tables and ``report.html``. The modules each
do one job: ``load`` (read, validate, group by study identity), ``subsets`` (the command
line's --where/--split sub-populations), ``edf`` (EDF maths: ecdf, DKW band, Δ on the
errors' grid, within k, area), ``stats`` (per-group summary, EDF tables, KS comparisons,
tuned results), ``expected`` (expected best error vs trials), ``paired`` (comparisons on
shared draws), ``resolution`` (what the n can resolve, and larger sibling sweeps of the
same arms), ``ranges`` (pycls's good lr/wd ranges), ``importance`` (Optuna PED-ANOVA),
``curves`` (training curves, stalls at chance), ``headroom`` (Δ as a share of the room
to chance, the validity gate), ``compare`` (several sweeps side by
side), ``words`` (findings in words), ``plots``, ``curve_plots`` and ``range_plots``
(figures), ``report`` and ``report_text`` (HTML), ``cli`` (the command line) and
``fixture`` (fake results); ``errors`` holds AnalysisError. Heavy libraries are imported
by those modules only, so importing this package stays cheap.
"""
