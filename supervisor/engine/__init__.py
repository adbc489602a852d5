"""The running daemon: units and their runners, the graph, readiness, the front door, the daemon itself."""
