"""Segment definition -> sqlglot expression tree. Never opens a connection."""
