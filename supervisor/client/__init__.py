"""The operator's side, standard library only: the control client, rendering, watch, completion."""
