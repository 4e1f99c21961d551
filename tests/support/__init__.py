"""Real components the tests stand up (an OTLP receiver, ...)."""
