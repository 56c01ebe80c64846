"""Engines run compiled sqlglot trees and return member keys.

``base.Engine`` is the protocol (shared, final behaviour around a few hooks with SQL
defaults); ``duckdb``, ``spark`` and ``postgres`` fill them in, and ``select`` chooses one
from ``engine:`` in segmenta.yaml or ``--engine``. Another SQL engine is one module here
and one branch in ``select``.
"""
