"""Detection: turn a platform snapshot into evidence-backed cases (docs/detection.md)."""
