"""Drift mathematics: reference profiles, mergeable window accumulators, statistics, verdicts.

Pure computation over numpy arrays and wire records: nothing here opens a connection.
"""
