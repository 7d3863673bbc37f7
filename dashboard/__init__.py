"""The ferembed Streamlit dashboard (``ferembed dashboard --runs DIR``).

``app.py`` is the entry point; ``views/`` holds one thin script per page (not ``pages/``: a
folder of that name beside the entry point switches on Streamlit's older file-based
navigation); ``_data.py`` the cached loaders (every read goes through it and stays inside the
runs root); ``_charts.py`` the Plotly figure builders; ``_ui.py`` widgets shared by pages.
"""
