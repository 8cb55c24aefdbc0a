"""Engines run a job request: the local engine here, AWS engines beside it."""
