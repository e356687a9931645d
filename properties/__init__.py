"""One module per property; each asks the engine questions and returns a verdict."""
