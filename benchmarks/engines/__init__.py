"""Engines the suite drives with the same workloads: ours and the peers."""
