"""The study report in four steps: collect -> analyze -> JSON -> render (scripts/report.py).

``collect`` reads the study's runs and records (raw numbers only), ``analyze`` derives every other
number the page prints, both go to docs/results.json, and ``render`` writes docs/results.md from
that JSON alone, so the page can be rebuilt without the runs (``results_study.py report
--from-json``). ``figures`` draws docs/figures/*.png from the runs and the same JSON.
"""
