"""Pure: the events, states and transitions of units, backoff, the status document. Standard library only."""
