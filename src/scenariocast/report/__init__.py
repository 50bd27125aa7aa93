"""Presentation of results, no inference: text tables for the terminal and probability reports.

``text`` renders tables for the command line. The probability report (``document``) is built
from a forecast and what explains it: ``content`` turns them into plain data, ``figures`` draws
them with matplotlib, ``render`` fills the Jinja2 templates in ``templates/`` and ``output``
writes the files, all or none. Jinja2 and matplotlib are imported only when a report is made.
"""
