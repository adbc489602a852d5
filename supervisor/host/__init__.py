"""The operating system: spawning, process trees, the guard, output pumps, notify, systemd, the socket lock."""
