"""The operator's side: the status document, the control server and its client."""
