"""Engines run compiled sqlglot trees and return member keys."""
