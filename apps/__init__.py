"""Applications built on the ``fsve``, ``energy`` and ``export`` packages.

``python -m apps.demo`` (``make demo``) and ``python -m apps.reports`` (``make reports``). They sit
above the libraries: nothing in ``fsve``, ``energy`` or ``export`` imports them.
"""
