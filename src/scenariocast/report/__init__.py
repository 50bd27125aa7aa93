"""Presentation of results: text tables now, HTML and plots later. No inference here."""
