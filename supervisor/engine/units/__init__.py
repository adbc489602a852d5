"""One runner per dependency, job and program: events in, ``transition()``, actions out."""
