"""The enforcement lifecycle: the state machine as data, the one write path, the event log
and its replay, the guarded operations, what delivery tells a case, the sweeper and the read
models."""
