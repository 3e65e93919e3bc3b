"""xlt_helpers: the tested logic behind the zero-shot cross-lingual transfer study.

Modules are named for what they hold: ``tasks`` and ``models`` (the registries),
``data`` (loaders), ``e5_offline`` / ``vocab`` (the offline checkpoint), ``train``,
``evaluate``, ``metrics``, ``qa``, ``robustness``, ``profiles``, ``grid``, ``runs``,
``book`` and ``cli`` (the ``xlt`` command).
"""
__version__ = "0.1.0"
