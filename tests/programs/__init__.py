"""Tiny child programs that the component tests supervise."""
